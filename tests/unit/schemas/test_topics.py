"""Topic names by role: namespace prefix, the `topics list --json` shape, contracts per topic."""

from __future__ import annotations

from secdistill.schemas.config import TopicSettings
from secdistill.schemas.envelopes import DeadLetter
from secdistill.schemas.records import Finding, LabelledFinding, TeacherRequest
from secdistill.schemas.task import load_task
from secdistill.schemas.topics import topic_map

REQUIRED_KEYS = {"input", "labelled", "teacher", "teacher_labels", "corrections", "deadletter", "routes"}


def test_defaults_without_namespace() -> None:
    topics = topic_map(TopicSettings(), load_task())
    assert topics.input == "findings.raw.v1"
    assert topics.labelled == "findings.labelled.v1"
    assert topics.deadletter == "findings.dlq.v1"
    assert topics.routes["critical"] == "triage.critical.v1"
    assert topics.routes["default"] == "triage.default.v1"


def test_namespace_prefixes_every_name_including_routes() -> None:
    task = load_task()
    plain = topic_map(TopicSettings(), task)
    ns = topic_map(TopicSettings(namespace="t-1234."), task)
    assert ns.routes == {r: "t-1234." + t for r, t in plain.routes.items()}
    for spec_plain, spec_ns in zip(plain.specs(), ns.specs()):
        assert spec_ns.role == spec_plain.role
        assert spec_ns.name == "t-1234." + spec_plain.name


def test_as_json_shape() -> None:
    task = load_task()
    doc = topic_map(TopicSettings(namespace="ns.", teacher="custom.teacher"), task).as_json()
    assert REQUIRED_KEYS <= set(doc)
    assert all(isinstance(doc[k], str) and doc[k].startswith("ns.") for k in REQUIRED_KEYS - {"routes"})
    assert doc["teacher"] == "ns.custom.teacher"
    assert doc["routes"] == {r: "ns." + t for r, t in task.routing.topics().items()}
    assert set(doc["routes"]) == {r.name for r in task.routing.rules} | {"default"}


def test_specs_carry_contracts_and_names_are_unique() -> None:
    topics = topic_map(TopicSettings(namespace="x."), load_task())
    specs = topics.specs()
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    by_role = {s.role: s for s in specs}
    assert by_role["input"].value_model is Finding
    assert by_role["labelled"].value_model is LabelledFinding
    assert by_role["teacher"].value_model is TeacherRequest
    assert by_role["deadletter"].value_model is DeadLetter
    routes = [s for s in specs if s.role.startswith("route:")]
    assert {s.role for s in routes} == {f"route:{r}" for r in topics.routes}
    assert all(s.value_model is LabelledFinding and s.key_field == "finding_id" for s in routes)
