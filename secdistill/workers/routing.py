"""route(prediction, finding, spec) -> route names. Pure; the default route always matches."""

from __future__ import annotations

from secdistill.schemas.records import Finding, Prediction
from secdistill.schemas.task import RouteCondition, RoutingSpec


def _matches(cond: RouteCondition, prediction: Prediction, finding: Finding) -> bool:
    for head, classes in cond.labels.items():
        if prediction.labels.get(head) not in classes:
            return False
    if cond.severity and (prediction.severity is None or prediction.severity.label not in cond.severity):
        return False
    for field, values in cond.fields.items():
        if str(getattr(finding, field, None) or finding.attributes.get(field, "")) not in values:
            return False
    return True


def route(prediction: Prediction, finding: Finding, routing: RoutingSpec) -> list[str]:
    """Every rule that matches, in spec order; the default route when none does."""
    matched = [r.name for r in routing.rules if _matches(r.when, prediction, finding)]
    return matched or [routing.default.name]
