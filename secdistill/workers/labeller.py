"""Labeller: scorer + fingerprint cache + deferral policy. One per loaded model version."""

from __future__ import annotations

from secdistill.schemas.records import Finding, Prediction
from secdistill.workers.cache import FingerprintCache
from secdistill.workers.config import ModelSettings
from secdistill.workers.deferral import DeferralPolicy
from secdistill.workers.inference import OnnxScorer


class Labeller:
    """Labels findings with one model version; a repeated text is scored once."""

    def __init__(self, scorer: OnnxScorer, settings: ModelSettings) -> None:
        self.scorer = scorer
        self.version = scorer.version
        self.task = scorer.task
        self.cache: FingerprintCache[Prediction] = FingerprintCache(settings.cache_size)
        self.policy = DeferralPolicy(
            scorer.task,
            {**scorer.manifest.thresholds, **settings.thresholds},
            shadow_rate=settings.shadow_rate,
            threshold_scale=settings.threshold_scale,
            seed=settings.seed,
        )

    def label(self, findings: list[Finding]) -> list[Prediction]:
        """Predictions with deferral decided; raises InferenceError if the batch cannot be scored."""
        keys = [f.fingerprint() for f in findings]
        found: dict[str, Prediction] = {}
        misses: dict[str, Finding] = {}
        for key, finding in zip(keys, findings):
            if key in found or key in misses:
                continue
            hit = self.cache.get(key)
            if hit is None:
                misses[key] = finding
            else:
                found[key] = hit
        fresh = set(misses)
        if misses:
            scored = self.scorer.score(list(misses.values()))
            for key, pred in zip(misses, scored):
                self.cache.put(key, pred)
                found[key] = pred
        out = []
        for key, finding in zip(keys, findings):
            pred = found[key].model_copy(
                update={"finding_id": finding.finding_id, "cached": key not in fresh}
            )
            fresh.discard(key)  # a second copy in the same batch counts as a cache hit
            out.append(self.policy.apply(pred))
        return out
