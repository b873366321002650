"""TaskSpec: the task is data, not code (heads, input template, derived outputs, routing, teacher).

The spec is both the training contract and the student's output contract. One YAML per task;
``load_task`` validates it, and ``sha256`` pins it into every model manifest.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from secdistill.schemas.cvss import METRICS, SEVERITIES
from secdistill.schemas.errors import TaskSpecError
from secdistill.schemas.records import Finding

TEMPLATE_FIELDS = ("title", "description", "ecosystem", "package", "package_version", "source")


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HeadSpec(_Spec):
    """One classification head: an ordered class list and how confident it must be to stand alone."""

    name: str
    classes: list[str] = Field(min_length=2)
    weight: float = 1.0
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    defer: bool = True  # does low confidence on this head send the finding to the teacher?
    description: str = ""


class InputSpec(_Spec):
    """How a Finding becomes the text the model reads."""

    template: str
    max_tokens: int = Field(128, ge=8, le=512)


class RouteCondition(_Spec):
    """All listed conditions must hold (AND); each list is a set of accepted values (OR)."""

    labels: dict[str, list[str]] = Field(default_factory=dict)
    severity: list[str] = Field(default_factory=list)
    fields: dict[str, list[str]] = Field(default_factory=dict)


class RouteRule(_Spec):
    """A named route to a topic when its condition matches."""

    name: str
    topic: str
    when: RouteCondition


class RoutingSpec(_Spec):
    """Rules plus a default route: nothing is ever unroutable."""

    rules: list[RouteRule] = Field(default_factory=list)
    default: RouteRule

    def topics(self) -> dict[str, str]:
        """Route name to topic suffix, default included."""
        out = {r.name: r.topic for r in self.rules}
        out[self.default.name] = self.default.topic
        return out


class TeacherSpec(_Spec):
    """What an LLM teacher is told; the label sets come from the heads, never from the text."""

    instructions: str


class TaskSpec(_Spec):
    """A labelling task: inputs, heads, derived outputs, routing and teacher instructions."""

    name: str
    version: str = "1"
    description: str = ""
    input: InputSpec
    heads: list[HeadSpec] = Field(min_length=1)
    derived: list[Literal["cvss31"]] = Field(default_factory=list)
    routing: RoutingSpec
    teacher: TeacherSpec
    shadow_rate: float = Field(0.02, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        names = [h.name for h in self.heads]
        if len(set(names)) != len(names):
            raise TaskSpecError(f"duplicate head names in {names}")
        for h in self.heads:
            if len(set(h.classes)) != len(h.classes):
                raise TaskSpecError(f"head {h.name} has duplicate classes")
        heads = self.head_map()
        if "cvss31" in self.derived:
            for metric, wanted in METRICS.items():
                if metric not in heads or tuple(heads[metric].classes) != wanted:
                    raise TaskSpecError(f"cvss31 needs head {metric} with classes {wanted}")
        for rule in [*self.routing.rules, self.routing.default]:
            for head, classes in rule.when.labels.items():
                if head not in heads:
                    raise TaskSpecError(f"route {rule.name} names unknown head {head}")
                unknown = set(classes) - set(heads[head].classes)
                if unknown:
                    raise TaskSpecError(f"route {rule.name}: unknown classes {unknown} for {head}")
            if rule.when.severity and "cvss31" not in self.derived:
                raise TaskSpecError(f"route {rule.name} uses severity but the task derives none")
            if set(rule.when.severity) - set(SEVERITIES):
                raise TaskSpecError(f"route {rule.name}: unknown severity in {rule.when.severity}")
        try:
            self.render(Finding(finding_id="x", description="x"))
        except (KeyError, IndexError, ValueError) as exc:
            raise TaskSpecError(f"bad input template: {exc}") from exc
        return self

    def head_map(self) -> dict[str, HeadSpec]:
        """Heads by name."""
        return {h.name: h for h in self.heads}

    def slices(self) -> dict[str, tuple[int, int]]:
        """Each head's [start, end) in the concatenated logit vector."""
        out: dict[str, tuple[int, int]] = {}
        start = 0
        for h in self.heads:
            out[h.name] = (start, start + len(h.classes))
            start += len(h.classes)
        return out

    @property
    def num_logits(self) -> int:
        """Width of the student's single linear layer."""
        return sum(len(h.classes) for h in self.heads)

    def render(self, finding: Finding, *, drop_title: bool = False) -> str:
        """The model's input text for a finding; absent fields render empty."""
        values = {f: (getattr(finding, f) or "") for f in TEMPLATE_FIELDS}
        if drop_title:
            values["title"] = ""
        text = self.input.template.format(**values)
        # Empty fields leave stray separators (". desc [] pkg"); collapse them.
        text = " ".join(text.replace("[]", " ").split())
        return text.lstrip(". ")

    def sha256(self) -> str:
        """Stable hash of the spec's content, pinned into model manifests."""
        from secdistill.schemas import codec

        return hashlib.sha256(codec.dumps(self.model_dump(mode="json"), sort_keys=True)).hexdigest()


def load_task(path: str | Path | None = None) -> TaskSpec:
    """Load and validate a task spec from YAML; the bundled ``advisory-triage`` when no path."""
    if path is None:
        text = resources.files("secdistill").joinpath("tasks/advisory-triage.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TaskSpecError(f"task spec is not valid YAML: {exc}") from exc
    try:
        return TaskSpec.model_validate(data)
    except ValueError as exc:
        raise TaskSpecError(str(exc)) from exc
