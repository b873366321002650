"""The one exception -> dead-letter reason map."""

from __future__ import annotations

import base64
import logging

from secdistill.schemas.envelopes import DeadLetter, DeadLetterReason, Stage
from secdistill.schemas.errors import ContractError
from secdistill.workers.errors import InferenceError, UnroutableError

log = logging.getLogger(__name__)

_CONTRACT_KINDS = {
    "bad_json": DeadLetterReason.BAD_JSON,
    "bad_encoding": DeadLetterReason.BAD_ENCODING,
    "schema_violation": DeadLetterReason.SCHEMA_VIOLATION,
    "too_large": DeadLetterReason.TOO_LARGE,
}


def reason_for(exc: BaseException) -> DeadLetterReason:
    """Classify an exception raised while processing one record."""
    if isinstance(exc, ContractError):
        return _CONTRACT_KINDS.get(exc.kind, DeadLetterReason.SCHEMA_VIOLATION)
    if isinstance(exc, InferenceError):
        return DeadLetterReason.INFERENCE_FAILED
    if isinstance(exc, UnroutableError):
        return DeadLetterReason.UNROUTABLE
    return DeadLetterReason.INTERNAL_ERROR


def to_dead_letter(
    raw: bytes,
    exc: BaseException,
    stage: Stage,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    finding_id: str | None = None,
    app: str = "secdistill",
    reason: DeadLetterReason | None = None,
) -> DeadLetter:
    """Build the dead letter for one record; the payload is always the original bytes."""
    reason = reason or reason_for(exc)
    where = f"{topic}[{partition}]@{offset}"
    if reason is DeadLetterReason.INTERNAL_ERROR:
        log.error("dead letter %s at %s: %s", reason, where, exc, exc_info=exc)
    else:
        log.warning("dead letter %s at %s: %s", reason, where, exc)
    return DeadLetter(
        reason=reason,
        stage=stage,
        error=f"{type(exc).__name__}: {exc}"[:4000],
        topic=topic,
        partition=partition,
        offset=offset,
        finding_id=finding_id,
        payload_b64=base64.b64encode(raw).decode("ascii"),
        payload_bytes=len(raw),
        app=app,
    )
