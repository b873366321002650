"""What a teacher answer becomes: a TeacherLabel, the final LabelledFinding, maybe a ReviewItem.

Also the sampling priority that biases a scarce teacher budget toward ambiguous items (small
margins) and rare classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from secdistill.schemas.records import (
    DecidedBy,
    Finding,
    LabelledFinding,
    Prediction,
    ReviewItem,
    TeacherLabel,
    TeacherRequest,
)
from secdistill.schemas.task import TaskSpec
from secdistill.workers.inference import predictions_from_probs
from secdistill.workers.routing import route
from secdistill.workers.teachers.base import TeacherAnswer

Priors = dict[str, dict[str, float]]
Router = Callable[[Prediction, Finding], list[str]]


@dataclass(frozen=True)
class ReviewPolicy:
    """When a teacher answer is worth a human look."""

    student_confident: float = 0.90  # student this sure and the teacher disagrees
    rare_prior: float = 0.02  # a teacher label this rare in the curated corpus
    ambiguous_margin: float = 0.05  # teacher's top-2 gap below this on a head


def teacher_label(request: TeacherRequest, answer: TeacherAnswer, teacher_id: str, version: str,
                  *, cached: bool) -> TeacherLabel:
    """The training signal: soft labels, evidence, raw answer, cost (0 when served from cache)."""
    return TeacherLabel(
        finding_id=request.finding_id, finding=request.finding,
        fingerprint=request.finding.fingerprint(), probs=answer.probs, labels=answer.labels,
        teacher_id=teacher_id, teacher_version=version, evidence=answer.evidence[:50],
        raw_answer=(answer.raw_answer or None) and answer.raw_answer[:16_000],
        latency_ms=0.0 if cached else answer.latency_ms,
        cost_usd=0.0 if cached else answer.cost_usd,
        shadow=request.shadow, student_labels=request.student.labels,
        student_model_version=request.student.model_version, cached=cached,
    )


def teacher_prediction(task: TaskSpec, request: TeacherRequest, answer: TeacherAnswer,
                       version: str) -> Prediction:
    """The teacher's answer as a Prediction (derived CVSS outputs included), decided_by=teacher."""
    probs = {h.name: np.array([[answer.probs[h.name][c] for c in h.classes]]) for h in task.heads}
    pred = predictions_from_probs(task, [request.finding], probs, version)[0]
    return pred.model_copy(update={"decided_by": DecidedBy.TEACHER, "deferral_reasons": request.reasons})


def labelled_finding(task: TaskSpec, request: TeacherRequest, answer: TeacherAnswer, version: str,
                     router: Router | None = None) -> LabelledFinding:
    """The final decision for a deferred finding, routed by the task's rules."""
    pred = teacher_prediction(task, request, answer, version)
    routes = (router or (lambda p, f: route(p, f, task.routing)))(pred, request.finding)
    return LabelledFinding(finding_id=request.finding_id, finding=request.finding, prediction=pred,
                           routes=routes, model_version=version, decided_by=DecidedBy.TEACHER)


def review_reasons(task: TaskSpec, request: TeacherRequest, answer: TeacherAnswer,
                   reference: dict[str, str], priors: Priors | None, policy: ReviewPolicy) -> list[str]:
    """Why a person should look at this answer; empty when nothing stands out."""
    why = []
    ref_diff = sorted(h for h, c in reference.items() if answer.labels.get(h) not in (None, c))
    if ref_diff:
        why.append("teacher_vs_reference:" + ",".join(ref_diff))
    student = request.student
    sure_diff = sorted(h for h, c in student.labels.items()
                       if student.confidence.get(h, 0.0) >= policy.student_confident
                       and answer.labels.get(h) not in (None, c))
    if sure_diff:
        why.append("confident_student_disagrees:" + ",".join(sure_diff))
    if priors:
        rare = sorted(f"{h}={c}" for h, c in answer.labels.items()
                      if priors.get(h, {}).get(c, 1.0) < policy.rare_prior)
        if rare:
            why.append("rare_class:" + ",".join(rare))
    close = sorted(h.name for h in task.heads if h.defer and _margin(answer.probs[h.name]) < policy.ambiguous_margin)
    if close:
        why.append("ambiguous_teacher:" + ",".join(close))
    return why


def review_item(request: TeacherRequest, answer: TeacherAnswer, why: list[str],
                reference: dict[str, str]) -> ReviewItem:
    """A disagreement for the review topic."""
    return ReviewItem(finding_id=request.finding_id, finding=request.finding, why=why,
                      teacher_labels=answer.labels, student_labels=request.student.labels,
                      reference_labels=reference)


def _margin(dist: dict[str, float]) -> float:
    top = sorted(dist.values(), reverse=True)
    return top[0] - top[1] if len(top) > 1 else 1.0


def sample_priority(prediction: Prediction, task: TaskSpec, priors: Priors | None = None) -> float:
    """0..1: how much a teacher answer is worth here (small student margins, rare predicted classes).

    The student worker can weight its shadow sampling by this; the teacher service uses it to keep
    a nearly spent budget for the items that teach the most.
    """
    margins = [_margin(prediction.probs[h.name]) for h in task.heads if h.name in prediction.probs]
    ambiguity = 1.0 - min(margins) if margins else 0.0
    rarity = 0.0
    if priors:
        rarity = max((1.0 - min(1.0, priors.get(h, {}).get(c, 1.0) / 0.05)
                      for h, c in prediction.labels.items()), default=0.0)
    return float(max(ambiguity, rarity))
