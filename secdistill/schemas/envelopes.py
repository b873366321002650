"""Dead letters: what the fleet emits instead of crashing or dropping a record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from secdistill.schemas.records import SCHEMA_VERSION, utc_now


class DeadLetterReason(StrEnum):
    """Why a record was not labelled. Stable codes: alerts and replays key on them."""

    BAD_JSON = "bad_json"
    BAD_ENCODING = "bad_encoding"
    SCHEMA_VIOLATION = "schema_violation"
    TOO_LARGE = "too_large"
    DUPLICATE_IN_BATCH = "duplicate_in_batch"
    INFERENCE_FAILED = "inference_failed"
    UNROUTABLE = "unroutable"
    TEACHER_REJECTED = "teacher_rejected"
    TEACHER_FAILED = "teacher_failed"
    RETRIES_EXHAUSTED = "retries_exhausted"
    INTERNAL_ERROR = "internal_error"


class Stage(StrEnum):
    """Where in the pipeline the record failed."""

    DECODE = "decode"
    VALIDATE = "validate"
    INFERENCE = "inference"
    ROUTING = "routing"
    PRODUCE = "produce"
    TEACHER = "teacher"
    INTERNAL = "internal"


class DeadLetter(BaseModel):
    """A record that could not be processed, with the original bytes so it can be replayed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    reason: DeadLetterReason
    stage: Stage
    error: Annotated[str, StringConstraints(max_length=4_000)]
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    finding_id: str | None = None
    payload_b64: str
    payload_bytes: int
    app: str = "secdistill"
    created_at: datetime = Field(default_factory=utc_now)
