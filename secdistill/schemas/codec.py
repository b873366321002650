"""The one serializer: orjson bytes in and out, pydantic validation, typed errors.

Nothing else in the project calls ``json.loads`` or ``model_validate_json``: a single place decides
how bad input is classified, so every dead letter carries the same reason for the same fault.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from secdistill.schemas.errors import ContractError

M = TypeVar("M", bound=BaseModel)

# A record bigger than this is refused before parsing, so a 5 MB payload costs a length check,
# not a 5 MB parse and a model validation. Finding fields have their own, smaller bounds.
DEFAULT_MAX_RECORD_BYTES = 256 * 1024

_TOO_LONG = {"string_too_long", "too_long", "bytes_too_long"}


def loads(raw: bytes | bytearray | memoryview | str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Any:
    """Parse JSON bytes; raise ContractError(too_large | bad_encoding | bad_json)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise ContractError("too_large", f"record is {len(raw)} bytes, limit {max_bytes}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise ContractError("bad_encoding", f"not UTF-8: {uexc}") from exc
        raise ContractError("bad_json", f"invalid JSON: {exc}") from exc


def validate(cls: type[M], obj: Any) -> M:
    """Validate a parsed object against a contract; raise ContractError(schema_violation | too_large)."""
    if not isinstance(obj, dict):
        raise ContractError("schema_violation", f"expected a JSON object, got {type(obj).__name__}")
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        kinds = {err["type"] for err in exc.errors()}
        kind = "too_large" if kinds & _TOO_LONG else "schema_violation"
        raise ContractError(kind, _short(exc)) from exc


def decode(cls: type[M], raw: bytes | bytearray | memoryview | str, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> M:
    """Bytes to a validated record."""
    return validate(cls, loads(raw, max_bytes))


def encode(record: BaseModel) -> bytes:
    """A record to compact JSON bytes."""
    return orjson.dumps(record.model_dump(mode="json", exclude_none=True))


def dumps(obj: Any, *, pretty: bool = False, sort_keys: bool = False) -> bytes:
    """Plain data (dicts, lists, numbers) to JSON bytes; numpy scalars and arrays are accepted."""
    option = orjson.OPT_SERIALIZE_NUMPY
    if pretty:
        option |= orjson.OPT_INDENT_2
    if sort_keys:
        option |= orjson.OPT_SORT_KEYS
    return orjson.dumps(obj, option=option, default=_fallback)


def _fallback(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_none=True)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _short(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; (+{more} more)" if more > 0 else "")
