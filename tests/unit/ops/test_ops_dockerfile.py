"""Static checks of the Dockerfile's contract (hadolint checks the style; this, the intent)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from manifests import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
FINAL_TARGETS = ("worker", "worker-gpu", "distill")


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def _stages() -> dict[str, Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)  # join continuation lines
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, arg = line.partition(" ")
        if op.upper() == "FROM":
            m = re.match(r"(\S+)\s+AS\s+(\S+)", arg, re.I)
            assert m, line
            current = Stage(m.group(2), m.group(1))
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((op.upper(), arg.strip()))
    return stages


def _lineage(stages: dict[str, Stage], name: str) -> list[Stage]:
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def test_targets_exist_and_worker_is_the_default() -> None:
    stages = _stages()
    assert set(FINAL_TARGETS) <= set(stages)
    assert list(stages)[-1] == "worker", "a plain `docker build .` should give the small image"


def test_base_image_is_pinned() -> None:
    bases = {s.base for s in _stages().values()} - set(_stages())
    assert bases, "no external base image"
    for b in bases:
        assert re.match(r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$", b), b


def test_final_images_run_as_1000_with_the_cli_entrypoint() -> None:
    stages = _stages()
    for name in FINAL_TARGETS:
        chain = _lineage(stages, name)
        users = [u for s in reversed(chain) for u in s.all("USER")]
        assert users and users[-1] in {"1000", "1000:1000"}, name
        assert stages[name].all("ENTRYPOINT") == ['["secdistill"]'], name
        assert json.loads(stages[name].all("CMD")[-1])[0] in {"worker", "distill"}, name


def test_final_images_carry_no_build_tools_or_installs() -> None:
    stages = _stages()
    for name in FINAL_TARGETS:
        for s in _lineage(stages, name):
            for run in s.all("RUN"):
                assert not re.search(r"\b(apt-get|apk|pip install|gcc|make|curl|wget)\b", run), (
                    f"{s.name}: {run}"
                )
        copies = " ".join(stages[name].all("COPY"))
        assert "--from=venv-" in copies, name


def test_healthchecks_use_the_stdlib() -> None:
    stages = _stages()
    for name in ("worker", "worker-gpu"):
        (hc,) = stages[name].all("HEALTHCHECK")
        assert "urllib.request" in hc and "/healthz" in hc and "curl" not in hc, name
    assert stages["distill"].all("HEALTHCHECK") == ["NONE"]


def test_torch_stays_out_of_the_workers_and_cuda_out_of_distill() -> None:
    stages = _stages()
    worker_run = " ".join(stages["venv-worker"].all("RUN"))
    assert "[distill]" not in worker_run and "pip show torch" in worker_run
    gpu_run = " ".join(stages["venv-worker-gpu"].all("RUN"))
    # onnxruntime and onnxruntime-gpu never side by side: uninstall before installing.
    assert gpu_run.index("uninstall --yes onnxruntime") < gpu_run.index("onnxruntime-gpu")
    distill_run = " ".join(stages["venv-distill"].all("RUN"))
    assert "[distill]" in distill_run and "TORCH_INDEX_URL" in distill_run
    assert "nvidia-" in distill_run and "triton" in distill_run
    assert "download.pytorch.org/whl/cpu" in DOCKERFILE


def test_dockerignore_is_an_allow_list() -> None:
    lines = [
        ln.strip()
        for ln in (ROOT / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "deny everything first"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "constraints.txt", "secdistill"}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
    for sources in copied:
        for src in sources.split():
            assert src.rstrip("/") in allowed, f"COPY {src} is excluded by .dockerignore"
