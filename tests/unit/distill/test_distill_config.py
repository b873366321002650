"""Settings: env names, presets that never override explicit settings, a CLI that imports cheaply."""

from __future__ import annotations

import subprocess
import sys

import pytest

from secdistill.distill.config import DistillSettings, apply_preset


def test_env_and_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECDISTILL_REGISTRY__URI", "/tmp/somewhere")
    monkeypatch.setenv("SECDISTILL_TRAIN__EPOCHS", "1")
    s = apply_preset(DistillSettings(), "full")
    assert s.registry.uri == "/tmp/somewhere"
    assert s.train.epochs == 1.0  # explicit env wins over the preset's epochs
    assert s.student.num_layers == 6 and s.student.max_length == 128
    quick = apply_preset(DistillSettings(), "quick")
    assert quick.student.num_layers < 6 and quick.data.max_train is not None
    with pytest.raises(ValueError, match="unknown preset"):
        apply_preset(DistillSettings(), "huge")


def test_cli_imports_without_torch() -> None:
    code = ("import sys, secdistill.distill.cli; "
            "print(any(m.split('.')[0] in {'torch', 'transformers', 'optimum', 'sklearn'} for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
