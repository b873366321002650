"""Errors of the distillation job; each maps to a non-zero exit and nothing published."""

from __future__ import annotations

from secdistill.schemas.errors import RegistryError

__all__ = ["DistillError", "DataError", "SettingsError", "ParityError", "GateError", "RegistryError"]


class DistillError(RuntimeError):
    """Base of every distillation failure."""


class DataError(DistillError):
    """Training inputs are missing, malformed or too small to train on."""


class SettingsError(DistillError):
    """A setting names something the task does not have (e.g. an unknown head)."""


class ParityError(DistillError):
    """An exported model does not compute what the torch model computes."""


class GateError(DistillError):
    """A release gate refused the candidate model; ``failures`` names each failed gate."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("release gates refused the model: " + "; ".join(failures))
        self.failures = failures
