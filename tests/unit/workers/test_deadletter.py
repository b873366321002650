"""to_dead_letter / reason_for: the one exception -> reason map, and the original bytes kept."""

from __future__ import annotations

import base64

import pytest

from secdistill.schemas import codec
from secdistill.schemas.envelopes import DeadLetter, DeadLetterReason, Stage
from secdistill.schemas.errors import ContractError
from secdistill.schemas.records import Finding
from secdistill.workers.deadletter import reason_for, to_dead_letter
from secdistill.workers.errors import InferenceError, ModelLoadError, UnroutableError


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ContractError("bad_json", "x"), DeadLetterReason.BAD_JSON),
        (ContractError("bad_encoding", "x"), DeadLetterReason.BAD_ENCODING),
        (ContractError("schema_violation", "x"), DeadLetterReason.SCHEMA_VIOLATION),
        (ContractError("too_large", "x"), DeadLetterReason.TOO_LARGE),
        (ContractError("something_new", "x"), DeadLetterReason.SCHEMA_VIOLATION),
        (InferenceError("boom"), DeadLetterReason.INFERENCE_FAILED),
        (UnroutableError("no route"), DeadLetterReason.UNROUTABLE),
        (ModelLoadError("no model"), DeadLetterReason.INTERNAL_ERROR),
        (KeyError("k"), DeadLetterReason.INTERNAL_ERROR),
        (RuntimeError("bug"), DeadLetterReason.INTERNAL_ERROR),
        (ValueError("plain value error"), DeadLetterReason.INTERNAL_ERROR),
    ],
)
def test_each_exception_maps_to_its_reason(exc: BaseException, reason: DeadLetterReason) -> None:
    assert reason_for(exc) is reason
    dl = to_dead_letter(b"{}", exc, Stage.DECODE)
    assert dl.reason is reason
    assert dl.error.startswith(type(exc).__name__ + ": ")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", DeadLetterReason.BAD_JSON),
        (b'{"finding_id": "a", "description": "\xff\xfe"}', DeadLetterReason.BAD_ENCODING),
        (b'{"finding_id": 1, "description": "x"}', DeadLetterReason.SCHEMA_VIOLATION),
        (b"[]", DeadLetterReason.SCHEMA_VIOLATION),
        (b'{"finding_id": "a", "description": "' + b"x" * 40_000 + b'"}', DeadLetterReason.TOO_LARGE),
    ],
)
def test_real_codec_failures_map_to_their_reason(raw: bytes, reason: DeadLetterReason) -> None:
    with pytest.raises(ContractError) as info:
        codec.decode(Finding, raw)
    assert to_dead_letter(raw, info.value, Stage.DECODE).reason is reason


@pytest.mark.parametrize(
    "raw",
    [b"", b"plain", b"\xff\xfe\x00\x80 not utf-8 \xc3", bytes(range(256)), b'{"a": 1}\r\n'],
)
def test_payload_round_trips_the_original_bytes(raw: bytes) -> None:
    dl = to_dead_letter(raw, ContractError("bad_json", "x"), Stage.DECODE, topic="in", partition=3,
                        offset=42, finding_id="f-9", app="test-app")
    assert base64.b64decode(dl.payload_b64) == raw
    assert dl.payload_bytes == len(raw)
    assert (dl.topic, dl.partition, dl.offset, dl.finding_id, dl.app) == ("in", 3, 42, "f-9", "test-app")
    assert dl.stage is Stage.DECODE
    back = codec.decode(DeadLetter, codec.encode(dl))
    assert back == dl and base64.b64decode(back.payload_b64) == raw


def test_explicit_reason_overrides_the_map() -> None:
    dl = to_dead_letter(b"x", RuntimeError("late"), Stage.TEACHER, reason=DeadLetterReason.RETRIES_EXHAUSTED)
    assert dl.reason is DeadLetterReason.RETRIES_EXHAUSTED and dl.stage is Stage.TEACHER


def test_long_error_text_is_truncated_to_the_contract_bound() -> None:
    dl = to_dead_letter(b"x", RuntimeError("e" * 10_000), Stage.INTERNAL)
    assert len(dl.error) == 4000
    codec.decode(DeadLetter, codec.encode(dl))  # still a valid record
