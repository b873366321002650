"""The distillation pipeline end to end on a tiny student: gates refuse and publish nothing, an
accepted run publishes a version the worker's OnnxScorer loads and scores like the eval did,
and the CLI sub-apps (models list/promote/rollback, eval) work on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.onnxruntime")

from typer.testing import CliRunner  # noqa: E402

pytestmark = pytest.mark.integration

from secdistill.distill.config import DistillSettings, apply_preset  # noqa: E402
from secdistill.distill.errors import GateError  # noqa: E402
from secdistill.distill.pipeline import build_candidate, publish_candidate, run_distillation  # noqa: E402
from secdistill.schemas import codec  # noqa: E402
from secdistill.schemas.config import RegistrySettings  # noqa: E402
from secdistill.schemas.registry import Registry, verify  # noqa: E402


# Each pipeline run costs ~30 s on 2 shared cores: the module runs two.
def _settings(uri: str, gates: bool, workdir: Path | None = None) -> DistillSettings:
    s = apply_preset(DistillSettings(registry=RegistrySettings(uri=uri)), "tiny")
    return s.model_copy(update={"gates": s.gates.model_copy(update={"enabled": gates}),
                                "train": s.train.model_copy(update={"max_steps": 12}),
                                "publish": s.publish.model_copy(update={"workdir": str(workdir) if workdir else None})})


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    uri = str(tmp_path_factory.mktemp("registry"))
    work = tmp_path_factory.mktemp("work")
    m = run_distillation(_settings(uri, gates=False, workdir=work))
    return uri, Registry(uri).version_dir(m.name, m.version), work


def test_gates_refuse_a_weak_model_and_nothing_is_published(tmp_path: Path) -> None:
    uri = str(tmp_path / "registry")
    with pytest.raises(GateError, match="beats_tfidf"):  # 12 steps of a tiny BERT lose to TF-IDF
        build_candidate(_settings(uri, gates=True), tmp_path / "work")
    assert (tmp_path / "work" / "candidate" / "report.md").is_file()  # the refusal is explained
    with pytest.raises(GateError):
        publish_candidate(uri, tmp_path / "work", "stable")
    assert Registry(uri).versions("advisory-triage") == []


def test_published_folder_has_reports_and_calibration(published: tuple[str, Path, Path]) -> None:
    _, folder, _ = published
    m = verify(folder)
    for name in ("eval.json", "report.md", "report.html", "dataset_card.json", "calibration.json",
                 "model.onnx", "model.fp32.onnx", "tokenizer.json", "task.yaml"):
        assert name in m.files, name
    assert set(m.temperatures) == set(m.heads) and all(t > 0 for t in m.temperatures.values())
    assert set(m.thresholds) == set(m.heads)
    ev = codec.loads((folder / "eval.json").read_bytes(), max_bytes=1 << 26)
    assert {"student", "baselines", "cascade", "int8_vs_fp32", "slices"} <= set(ev)
    assert "<svg" in (folder / "report.html").read_text()


def test_worker_scorer_reproduces_distill_eval(published: tuple[str, Path, Path]) -> None:
    from secdistill.distill.calibration import head_probs
    from secdistill.distill.config import StudentSettings
    from secdistill.distill.export import OnnxRunner
    from secdistill.distill.student import load_tokenizer
    from secdistill.schemas.records import Finding
    from secdistill.workers.inference import OnnxScorer

    _, folder, _ = published
    scorer = OnnxScorer(folder)
    findings = [Finding(finding_id=str(i), description=d, title="t", ecosystem="npm", package="x")
                for i, d in enumerate(["SQL injection via the id parameter.", "A crafted PNG overflows a heap buffer " * 20])]
    texts = scorer.texts(findings)
    worker = scorer.head_probs(scorer.logits(texts))
    ids = load_tokenizer(StudentSettings(tiny=True))(texts, truncation=True, max_length=64)["input_ids"]
    ours = head_probs(OnnxRunner(folder / "model.onnx").logits(ids), scorer.task, scorer.manifest.temperatures)
    for head in ours:
        np.testing.assert_allclose(worker[head], ours[head], atol=1e-5)
    preds = scorer.score(findings)
    assert preds[0].model_version == folder.name and set(preds[0].labels) == set(ours)


def test_models_cli_and_eval(published: tuple[str, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from secdistill.distill.cli import distill_app, eval_command, models_app

    uri, folder, work = published
    monkeypatch.setenv("SECDISTILL_REGISTRY__URI", uri)
    registry = Registry(uri)
    first = folder.name
    second = publish_candidate(uri, work, "stable").version
    assert registry.channel_version("advisory-triage", "stable") == second
    runner = CliRunner()
    listed = runner.invoke(models_app, ["list", "--json"])
    assert listed.exit_code == 0 and first in listed.output and second in listed.output
    assert runner.invoke(models_app, ["promote", first, "--channel", "canary"]).exit_code == 0
    assert registry.channel_version("advisory-triage", "canary") == first
    assert runner.invoke(models_app, ["rollback", "--channel", "stable"]).exit_code == 0
    assert registry.channel_version("advisory-triage", "stable") == first
    assert runner.invoke(models_app, ["rollback", "--channel", "stable"]).exit_code == 1  # no history left
    assert runner.invoke(models_app, ["promote", "nope"]).exit_code == 1
    assert runner.invoke(distill_app, ["run", "--preset", "bogus"]).exit_code == 2

    rows = [{"record_id": "r1", "id": "CVE-1", "description": "XSS in the search box.",
             "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "cwe_class": "xss"},
            {"record_id": "r2", "id": "CVE-2", "description": "Heap overflow in the decoder.",
             "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_bytes(b"\n".join(codec.dumps(r) for r in rows))
    app = typer.Typer()
    app.command()(eval_command)
    out = tmp_path / "eval.json"
    res = runner.invoke(app, ["--model", first, "--input", str(labelled), "--output", str(out)])
    assert res.exit_code == 0, res.output
    report = codec.loads(out.read_bytes(), max_bytes=1 << 24)
    assert report["version"] == first and report["rows"] == 2 and report["heads"]["AV"]["n"] == 2
    assert report["cwe_class"]["n"] == 1


def test_resume_from_checkpoint_reproduces_the_run(published: tuple[str, Path, Path], tmp_path: Path) -> None:
    uri, folder, work = published
    assert (work / "checkpoint" / "model.safetensors").is_file()
    s = _settings(str(tmp_path / "reg"), gates=False)
    s = s.model_copy(update={"student": s.student.model_copy(update={"checkpoint": str(work / "checkpoint")})})
    draft = build_candidate(s, tmp_path / "again")
    assert not (tmp_path / "again" / "checkpoint").exists()  # nothing was trained
    first = verify(folder)
    assert draft.temperatures == pytest.approx(first.temperatures)
    assert draft.metrics["cvss_mean_accuracy"] == pytest.approx(first.metrics["cvss_mean_accuracy"])


def test_ensure_student_returns_the_existing_stable(published: tuple[str, Path, Path]) -> None:
    from secdistill.distill.models import ensure_student

    uri, _, _ = published
    registry = Registry(uri)
    stable = registry.channel_version("advisory-triage", "stable")
    assert ensure_student(uri).version == stable  # nothing is built when a stable model exists
