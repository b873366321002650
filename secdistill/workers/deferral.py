"""Deferral policy: which predictions go to the teacher, and which confident ones are shadow-sampled."""

from __future__ import annotations

import hashlib

from secdistill.schemas.records import Prediction
from secdistill.schemas.task import TaskSpec


def _unit_hash(key: str, seed: int) -> float:
    """A stable number in [0, 1) per key: a redelivered finding gets the same shadow decision."""
    digest = hashlib.blake2b(f"{seed}:{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class DeferralPolicy:
    """Per-head confidence thresholds (model calibration overrides the task's) plus a shadow rate."""

    def __init__(
        self,
        task: TaskSpec,
        model_thresholds: dict[str, float] | None = None,
        *,
        shadow_rate: float | None = None,
        threshold_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        base = {h.name: h.threshold for h in task.heads if h.defer}
        base.update({h: t for h, t in (model_thresholds or {}).items() if h in base})
        self.thresholds = {h: min(1.0, t * threshold_scale) for h, t in base.items()}
        self.shadow_rate = task.shadow_rate if shadow_rate is None else shadow_rate
        self.seed = seed

    def apply(self, pred: Prediction) -> Prediction:
        """Return the prediction with ``deferred``, ``deferral_reasons`` and ``shadow`` set."""
        reasons = [
            f"low_confidence:{head}"
            for head, threshold in self.thresholds.items()
            if pred.confidence.get(head, 1.0) < threshold
        ]
        if reasons:
            return pred.model_copy(update={"deferred": True, "deferral_reasons": reasons, "shadow": False})
        shadow = self.shadow_rate > 0 and _unit_hash(pred.finding_id, self.seed) < self.shadow_rate
        return pred.model_copy(
            update={"deferred": False, "deferral_reasons": ["shadow"] if shadow else [], "shadow": shadow}
        )
