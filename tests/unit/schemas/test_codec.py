"""The one codec: how bad bytes are classified, size bounds, strictness of internal records."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from secdistill.schemas import codec
from secdistill.schemas.envelopes import DeadLetter, DeadLetterReason, Stage
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import (
    MAX_DESCRIPTION_CHARS,
    MAX_TITLE_CHARS,
    Correction,
    Finding,
    LabelledFinding,
    Prediction,
    SeverityOut,
    TeacherLabel,
    TeacherRequest,
)

VALID = {"finding_id": "f-1", "description": "SQL injection in the login form."}


def _kind(raw: bytes | str, cls: type = Finding, max_bytes: int = codec.DEFAULT_MAX_RECORD_BYTES) -> str:
    with pytest.raises(ContractError) as info:
        codec.decode(cls, raw, max_bytes)
    return info.value.kind


def _prediction(**update: object) -> Prediction:
    base = dict(
        finding_id="f-1",
        labels={"AV": "N", "cwe_class": "xss"},
        probs={"AV": {"N": 0.9, "A": 0.05, "L": 0.03, "P": 0.02}},
        confidence={"AV": 0.9},
        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        score=9.8,
        severity=SeverityOut(label="CRITICAL", distribution={"CRITICAL": 1.0}),
        model_version="v1",
    )
    base.update(update)
    return Prediction(**base)


def test_valid_finding_decodes() -> None:
    f = codec.decode(Finding, orjson.dumps(VALID))
    assert f.finding_id == "f-1"
    assert f.description == VALID["description"]
    assert f.aliases == [] and f.attributes == {}


@pytest.mark.parametrize(
    "raw",
    [b"{", b"not json", b'{"finding_id": "a", "description": }', b"", b"{'single': 'quotes'}"],
)
def test_bad_json(raw: bytes) -> None:
    assert _kind(raw) == "bad_json"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"finding_id": "a", "description": "caf\xe9"}',  # latin-1, not UTF-8
        b"\xff\xfe{\x00}\x00",  # UTF-16 with BOM
        b'{"finding_id": "a", "description": "\xc3"}',  # truncated multi-byte sequence
    ],
)
def test_bad_encoding_for_non_utf8(raw: bytes) -> None:
    assert _kind(raw) == "bad_encoding"


@pytest.mark.parametrize(
    "obj",
    [
        {"finding_id": "a"},  # description missing
        {"description": "x"},  # finding_id missing
        {"finding_id": 7, "description": "x"},  # wrong type, not coerced
        {"finding_id": "a", "description": ["x"]},
        {"finding_id": "a", "description": ""},  # empty text
        {"finding_id": "", "description": "x"},  # empty id
        {"finding_id": "a", "description": "x", "aliases": "CVE-1"},
        {"finding_id": "a", "description": "x", "observed_at": "yesterday"},
        {"finding_id": "a", "description": "x", "attributes": {"k": {"nested": 1}}},
    ],
)
def test_schema_violation_for_wrong_types_and_missing_fields(obj: dict) -> None:
    assert _kind(orjson.dumps(obj)) == "schema_violation"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"a string"', b"null", b"42", b"true"])
def test_schema_violation_for_non_object_json(raw: bytes) -> None:
    assert _kind(raw) == "schema_violation"


def test_too_large_raw_record_is_refused_before_parsing() -> None:
    # 5 MB of description: refused on length, so it is not even valid JSON that matters.
    raw = b'{"finding_id": "a", "description": "' + b"x" * (5 << 20) + b'"}'
    assert _kind(raw) == "too_large"
    # Not JSON at all, still too_large: the length check comes first.
    assert _kind(b"{" * 2048, max_bytes=1024) == "too_large"


def test_raw_limit_is_inclusive() -> None:
    raw = orjson.dumps(VALID)
    assert codec.decode(Finding, raw, max_bytes=len(raw)).finding_id == "f-1"
    assert _kind(raw, max_bytes=len(raw) - 1) == "too_large"


def test_over_long_description_within_raw_limit_is_too_large() -> None:
    obj = {"finding_id": "a", "description": "x" * (MAX_DESCRIPTION_CHARS + 1)}
    raw = orjson.dumps(obj)
    assert len(raw) < codec.DEFAULT_MAX_RECORD_BYTES
    assert _kind(raw) == "too_large"
    obj["description"] = "x" * MAX_DESCRIPTION_CHARS
    assert len(codec.decode(Finding, orjson.dumps(obj)).description) == MAX_DESCRIPTION_CHARS


def test_over_long_title_and_too_many_aliases_are_too_large() -> None:
    assert _kind(orjson.dumps({**VALID, "title": "t" * (MAX_TITLE_CHARS + 1)})) == "too_large"
    assert _kind(orjson.dumps({**VALID, "aliases": [f"CVE-{i}" for i in range(65)]})) == "too_large"


def test_deep_nesting_is_bad_json_not_a_crash() -> None:
    raw = b'{"finding_id": "a", "description": "x", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert len(raw) < codec.DEFAULT_MAX_RECORD_BYTES
    assert _kind(raw) == "bad_json"


def test_moderate_nesting_in_attributes_is_a_schema_violation() -> None:
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    assert _kind(orjson.dumps({**VALID, "attributes": {"k": nested}})) == "schema_violation"


def test_unknown_fields_are_ignored_on_finding() -> None:
    f = codec.decode(Finding, orjson.dumps({**VALID, "new_producer_field": {"a": 1}, "cvss": 9.8}))
    assert f.finding_id == "f-1"
    assert "new_producer_field" not in f.model_dump()


@pytest.mark.parametrize("cls", [Prediction, LabelledFinding, TeacherRequest, TeacherLabel, DeadLetter])
def test_unknown_fields_are_forbidden_on_internal_records(cls: type) -> None:
    finding = Finding(**VALID)
    pred = _prediction()
    valid = {
        Prediction: pred,
        LabelledFinding: LabelledFinding(finding_id="f-1", finding=finding, prediction=pred,
                                         routes=["default"], model_version="v1", decided_by="student"),
        TeacherRequest: TeacherRequest(finding_id="f-1", finding=finding, student=pred),
        TeacherLabel: TeacherLabel(finding_id="f-1", finding=finding, fingerprint=finding.fingerprint(),
                                   probs={"AV": {"N": 1.0}}, labels={"AV": "N"}, teacher_id="t"),
        DeadLetter: DeadLetter(reason=DeadLetterReason.BAD_JSON, stage=Stage.DECODE, error="e",
                               payload_b64="", payload_bytes=0),
    }[cls]
    obj = orjson.loads(codec.encode(valid))
    assert codec.decode(cls, orjson.dumps(obj)) == valid
    obj["surprise"] = 1
    assert _kind(orjson.dumps(obj), cls) == "schema_violation"


def test_round_trip_of_every_record_kind() -> None:
    finding = codec.decode(Finding, orjson.dumps({
        **VALID, "title": "SQLi", "ecosystem": "npm", "package": "pkg", "aliases": ["CVE-2020-1"],
        "observed_at": "2024-05-01T12:00:00+00:00", "attributes": {"env": "prod", "n": 3, "ok": True},
    }))
    pred = _prediction()
    records = [
        finding,
        pred,
        LabelledFinding(finding_id="f-1", finding=finding, prediction=pred, routes=["critical"],
                        model_version="v1", decided_by="student"),
        TeacherRequest(finding_id="f-1", finding=finding, student=pred, shadow=True, reasons=["shadow"]),
        TeacherLabel(finding_id="f-1", finding=finding, fingerprint=finding.fingerprint(),
                     probs={"AV": {"N": 0.7, "L": 0.3}}, labels={"AV": "N"}, teacher_id="local"),
        Correction(finding_id="f-1", labels={"cwe_class": "sql-injection"}, author="alice"),
        DeadLetter(reason=DeadLetterReason.TOO_LARGE, stage=Stage.DECODE, error="big",
                   payload_b64="AAE=", payload_bytes=2, topic="t", partition=0, offset=5),
    ]
    for rec in records:
        raw = codec.encode(rec)
        assert isinstance(raw, bytes)
        assert codec.decode(type(rec), raw) == rec


def test_encode_is_compact_and_omits_none() -> None:
    raw = codec.encode(Finding(**VALID))
    assert b"\n" not in raw and b": " not in raw
    assert b"title" not in raw  # None fields are left out


def test_records_are_frozen() -> None:
    finding = Finding(**VALID)
    with pytest.raises(ValidationError):
        finding.description = "changed"  # type: ignore[misc]
    pred = _prediction()
    with pytest.raises(ValidationError):
        pred.deferred = True  # type: ignore[misc]
    assert finding.description == VALID["description"] and pred.deferred is False


def test_fingerprint_depends_on_text_not_on_id_or_asset() -> None:
    a = Finding(finding_id="a", description="d", package="p", asset="host-1")
    b = Finding(finding_id="b", description="d", package="p", asset="host-2")
    c = Finding(finding_id="a", description="d", package="q")
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    # Field boundaries matter: ("ab", "") and ("a", "b") are different texts.
    assert (Finding(finding_id="x", title="ab", description="c").fingerprint()
            != Finding(finding_id="x", title="a", description="bc").fingerprint())


def test_str_input_is_accepted_and_validate_rejects_non_objects() -> None:
    assert codec.decode(Finding, orjson.dumps(VALID).decode()).finding_id == "f-1"
    with pytest.raises(ContractError) as info:
        codec.validate(Finding, ["not", "an", "object"])
    assert info.value.kind == "schema_violation"


def test_dumps_handles_numpy_sets_and_models() -> None:
    import numpy as np

    out = orjson.loads(codec.dumps({"a": np.float32(0.5), "b": np.arange(3), "s": {"z", "y"},
                                    "m": Finding(**VALID)}, sort_keys=True))
    assert out == {"a": 0.5, "b": [0, 1, 2], "m": {**VALID, "schema_version": 1, "aliases": [],
                                                   "attributes": {}}, "s": ["y", "z"]}
    with pytest.raises(TypeError):
        codec.dumps({"x": object()})
