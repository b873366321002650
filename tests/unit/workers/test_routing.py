"""route(): spec-ordered matches, severity and label conditions, field conditions, default."""

from __future__ import annotations

from secdistill.schemas.records import Finding, Prediction, SeverityOut
from secdistill.schemas.task import RouteCondition, RouteRule, RoutingSpec, load_task
from secdistill.workers.routing import route

ROUTING = load_task().routing
FINDING = Finding(finding_id="f", description="d", ecosystem="npm", package="lodash",
                  attributes={"env": "prod", "tier": 1, "internet_facing": True})


def _pred(cwe: str = "other", severity: str | None = "HIGH") -> Prediction:
    return Prediction(
        finding_id="f", labels={"AV": "N", "cwe_class": cwe}, probs={}, confidence={},
        severity=SeverityOut(label=severity, distribution={severity: 1.0}) if severity else None,
        model_version="v",
    )


def test_critical_severity_route() -> None:
    assert route(_pred("other", "CRITICAL"), FINDING, ROUTING) == ["critical"]


def test_team_routes_by_cwe_class() -> None:
    assert route(_pred("xss"), FINDING, ROUTING) == ["team-appsec"]
    assert route(_pred("sql-injection"), FINDING, ROUTING) == ["team-appsec"]
    assert route(_pred("race-concurrency"), FINDING, ROUTING) == ["team-platform"]
    assert route(_pred("crypto-tls"), FINDING, ROUTING) == ["team-identity"]


def test_multiple_matches_in_spec_order() -> None:
    assert route(_pred("deserialization", "CRITICAL"), FINDING, ROUTING) == ["critical", "team-appsec"]
    assert route(_pred("memory-numeric-safety", "CRITICAL"), FINDING, ROUTING) == ["critical", "team-platform"]


def test_default_when_nothing_matches() -> None:
    assert route(_pred("other", "HIGH"), FINDING, ROUTING) == ["default"]
    assert route(_pred("input-validation", "LOW"), FINDING, ROUTING) == ["default"]
    # No severity at all (a task without cvss31 output): severity rules cannot match.
    assert route(_pred("other", None), FINDING, ROUTING) == ["default"]


def _fields_routing() -> RoutingSpec:
    return RoutingSpec(
        rules=[
            RouteRule(name="npm-prod", topic="t.npm-prod",
                      when=RouteCondition(fields={"ecosystem": ["npm"], "env": ["prod"]})),
            RouteRule(name="tier1", topic="t.tier1", when=RouteCondition(fields={"tier": ["1"]})),
            RouteRule(name="internet-xss", topic="t.ix",
                      when=RouteCondition(labels={"cwe_class": ["xss"]},
                                          fields={"internet_facing": ["True"]})),
            RouteRule(name="high-pypi", topic="t.hp",
                      when=RouteCondition(severity=["HIGH", "CRITICAL"], fields={"ecosystem": ["PyPI"]})),
        ],
        default=RouteRule(name="default", topic="t.default", when=RouteCondition()),
    )


def test_field_conditions_on_finding_fields_and_attributes() -> None:
    routing = _fields_routing()
    assert route(_pred("other"), FINDING, routing) == ["npm-prod", "tier1"]
    assert route(_pred("xss"), FINDING, routing) == ["npm-prod", "tier1", "internet-xss"]
    staging = FINDING.model_copy(update={"attributes": {"env": "staging"}})
    assert route(_pred("xss"), staging, routing) == ["default"]
    pypi = Finding(finding_id="g", description="d", ecosystem="PyPI")
    assert route(_pred("other", "HIGH"), pypi, routing) == ["high-pypi"]
    assert route(_pred("other", "MEDIUM"), pypi, routing) == ["default"]


def test_missing_field_never_matches() -> None:
    bare = Finding(finding_id="h", description="d")
    assert route(_pred("xss", "CRITICAL"), bare, _fields_routing()) == ["default"]
