"""Every topic the system uses, by role: the only place topic names are composed."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from secdistill.schemas.config import TopicSettings
from secdistill.schemas.envelopes import DeadLetter
from secdistill.schemas.records import (
    Correction,
    Finding,
    LabelledFinding,
    ReviewItem,
    TeacherLabel,
    TeacherRequest,
)
from secdistill.schemas.task import TaskSpec


@dataclass(frozen=True)
class TopicSpec:
    """A topic, the record it carries and the field it is keyed by."""

    role: str
    name: str
    value_model: type[BaseModel]
    key_field: str = "finding_id"


@dataclass(frozen=True)
class TopicMap:
    """Resolved topic names for one deployment (settings + task routing)."""

    input: str
    labelled: str
    teacher: str
    teacher_labels: str
    corrections: str
    review: str
    deadletter: str
    routes: dict[str, str]

    def specs(self) -> list[TopicSpec]:
        """All topics with their contracts, routes included."""
        roles: list[TopicSpec] = [
            TopicSpec("input", self.input, Finding),
            TopicSpec("labelled", self.labelled, LabelledFinding),
            TopicSpec("teacher", self.teacher, TeacherRequest),
            TopicSpec("teacher_labels", self.teacher_labels, TeacherLabel),
            TopicSpec("corrections", self.corrections, Correction),
            TopicSpec("review", self.review, ReviewItem),
            TopicSpec("deadletter", self.deadletter, DeadLetter),
        ]
        roles += [TopicSpec(f"route:{r}", t, LabelledFinding) for r, t in self.routes.items()]
        return roles

    def as_json(self) -> dict[str, object]:
        """The shape ``secdistill topics list --json`` prints."""
        return {
            "input": self.input,
            "labelled": self.labelled,
            "teacher": self.teacher,
            "teacher_labels": self.teacher_labels,
            "corrections": self.corrections,
            "review": self.review,
            "deadletter": self.deadletter,
            "routes": dict(self.routes),
        }


def topic_map(settings: TopicSettings, task: TaskSpec) -> TopicMap:
    """Compose names: namespace + role name; routes come from the task spec."""
    ns = settings.namespace
    return TopicMap(
        input=ns + settings.input,
        labelled=ns + settings.labelled,
        teacher=ns + settings.teacher,
        teacher_labels=ns + settings.teacher_labels,
        corrections=ns + settings.corrections,
        review=ns + settings.review,
        deadletter=ns + settings.deadletter,
        routes={name: ns + topic for name, topic in task.routing.topics().items()},
    )
