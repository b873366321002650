"""Shared fixtures: a tiny real student published into a temporary registry (built once per run)."""

from __future__ import annotations

import os

import pytest

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registry holding a tiny 2-layer student (optimum export + int8), promoted to stable."""
    from secdistill.distill.tiny import publish_tiny_model

    path = tmp_path_factory.mktemp("registry")
    publish_tiny_model(str(path))
    return str(path)
