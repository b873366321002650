"""Records that producers, workers, teachers and the distillation job exchange.

``Finding`` ignores unknown fields (producers evolve ahead of us); internal records are frozen and
forbid extra fields, so a drift between our own processes fails loudly in tests.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

# Bounds keep one record's memory predictable; the codec maps a violation to ``too_large``.
MAX_DESCRIPTION_CHARS = 32_000
MAX_TITLE_CHARS = 1_000
Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Short = Annotated[str, StringConstraints(max_length=256)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
AttrValue = str | int | float | bool | None
Probs = dict[str, dict[str, float]]


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(timezone.utc)


class DecidedBy(StrEnum):
    """Who made the final decision on a finding."""

    STUDENT = "student"
    TEACHER = "teacher"
    REFERENCE = "reference"
    CORRECTION = "correction"


class _Internal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(BaseModel):
    """What producers send: one advisory or scanner finding about one package."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=False)

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    description: Text
    title: Annotated[str, StringConstraints(max_length=MAX_TITLE_CHARS)] | None = None
    ecosystem: Short | None = None
    package: Annotated[str, StringConstraints(max_length=512)] | None = None
    package_version: Short | None = None
    advisory_id: Short | None = None
    aliases: Annotated[list[Short], Field(max_length=64)] = Field(default_factory=list)
    source: Short | None = None
    asset: Annotated[str, StringConstraints(max_length=512)] | None = None
    observed_at: datetime | None = None
    attributes: Annotated[dict[Short, AttrValue], Field(max_length=64)] = Field(default_factory=dict)

    def fingerprint(self) -> str:
        """Identity of the text the model sees: equal texts share one inference and one teacher call."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.title or "", self.description, self.ecosystem or "", self.package or ""):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x1f")
        return h.hexdigest()


class SeverityOut(_Internal):
    """Severity band with the distribution derived from the metric heads."""

    label: str
    distribution: dict[str, float]


class Prediction(_Internal):
    """The model's answer for one finding, per head and derived."""

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    labels: dict[str, str]
    probs: Probs
    confidence: dict[str, float]
    cvss_vector: str | None = None
    score: float | None = None
    severity: SeverityOut | None = None
    deferred: bool = False
    deferral_reasons: list[str] = Field(default_factory=list)
    shadow: bool = False
    model_version: str
    decided_by: DecidedBy = DecidedBy.STUDENT
    cached: bool = False


class LabelledFinding(_Internal):
    """What downstream consumers read: the finding, the decision and where it was routed."""

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    finding: Finding
    prediction: Prediction
    routes: list[str]
    model_version: str
    decided_by: DecidedBy
    labelled_at: datetime = Field(default_factory=utc_now)


class TeacherRequest(_Internal):
    """A finding the student was unsure about (or a shadow sample) for the teacher."""

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    finding: Finding
    student: Prediction
    shadow: bool = False
    reasons: list[str] = Field(default_factory=list)
    requested_at: datetime = Field(default_factory=utc_now)


class TeacherLabel(_Internal):
    """A teacher's soft labels for one finding: the distillation job's training signal."""

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    finding: Finding
    fingerprint: str
    probs: Probs
    labels: dict[str, str]
    teacher_id: str
    teacher_version: str = "0"
    evidence: list[str] = Field(default_factory=list)
    raw_answer: Annotated[str, StringConstraints(max_length=16_000)] | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    shadow: bool = False
    student_labels: dict[str, str] = Field(default_factory=dict)
    student_model_version: str | None = None
    cached: bool = False
    created_at: datetime = Field(default_factory=utc_now)


class Correction(_Internal):
    """A person's correction: overrides the teacher for the heads it names, with provenance."""

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    labels: dict[str, str]
    author: Short
    reason: Annotated[str, StringConstraints(max_length=2_000)] = ""
    advisory_id: Short | None = None
    fingerprint: str | None = None
    finding: Finding | None = None
    source: Literal["review", "manual", "import"] = "review"
    created_at: datetime = Field(default_factory=utc_now)


class ReviewItem(_Internal):
    """A disagreement worth a human look (teacher vs reference, confident student vs teacher, ...)."""

    schema_version: int = SCHEMA_VERSION
    finding_id: Id
    finding: Finding
    why: list[str]
    teacher_labels: dict[str, str]
    student_labels: dict[str, str] = Field(default_factory=dict)
    reference_labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schemas of every public record, for producers in other languages."""
    from secdistill.schemas.envelopes import DeadLetter
    from secdistill.schemas.manifest import ModelManifest
    from secdistill.schemas.task import TaskSpec

    models: list[type[BaseModel]] = [
        Finding, Prediction, LabelledFinding, TeacherRequest, TeacherLabel, Correction,
        ReviewItem, DeadLetter, ModelManifest, TaskSpec,
    ]
    return {m.__name__: m.model_json_schema() for m in models}
