"""Errors raised by the contract layer."""

from __future__ import annotations


class ContractError(ValueError):
    """Raw bytes or an object do not satisfy a contract.

    ``kind`` names the failure class (``bad_json``, ``bad_encoding``, ``schema_violation``,
    ``too_large``) so the worker's dead-letter map does not have to parse messages.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class TaskSpecError(ValueError):
    """A task spec is inconsistent (unknown head in a rule, duplicate classes, ...)."""


class RegistryError(RuntimeError):
    """The model registry is missing, inconsistent, or an artefact fails verification."""
