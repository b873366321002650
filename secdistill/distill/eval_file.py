"""``secdistill eval``: score a published model on a labelled JSONL file."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from secdistill.distill import evaluate
from secdistill.distill.calibration import ece, head_probs
from secdistill.distill.dataset import to_split
from secdistill.distill.errors import DataError
from secdistill.distill.examples import Example, corpus_examples
from secdistill.distill.export import OnnxRunner
from secdistill.schemas import codec
from secdistill.schemas.config import RegistrySettings
from secdistill.schemas.errors import ContractError
from secdistill.schemas.manifest import MODEL_INT8, TASK, TOKENIZER
from secdistill.schemas.records import Finding
from secdistill.schemas.registry import Registry, verify
from secdistill.schemas.task import TaskSpec, load_task


def read_labelled(path: Path, task: TaskSpec) -> list[Example]:
    """Rows as examples: TeacherLabel / LabelledFinding (finding + labels) or advisory rows."""
    opener = gzip.open if path.suffix == ".gz" else open
    advisories, out = [], []
    heads = task.head_map()
    with opener(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = codec.loads(line, max_bytes=1 << 20)
                if "cvss_vector" in row or "cwe_class" in row:
                    advisories.append({"record_id": row.get("record_id") or f"line-{lineno}",
                                       "id": row.get("id") or f"line-{lineno}", **row})
                    continue
                labels = row.get("labels") or row.get("prediction", {}).get("labels") or {}
                finding = codec.validate(Finding, row["finding"])
            except (ContractError, KeyError, TypeError) as exc:
                raise DataError(f"{path}:{lineno}: not a labelled row ({exc})") from exc
            labels = {h: c for h, c in labels.items() if h in heads and c in heads[h].classes}
            out.append(Example(uid=finding.finding_id, finding=finding, keys=(finding.finding_id,),
                               labels=labels, provenance={h: "file" for h in labels}))
    return out + corpus_examples(task, advisories)


def evaluate_file(registry: RegistrySettings, ref: str | None, path: Path) -> dict[str, Any]:
    """Per-head accuracy/macro-F1/ECE, derived severity and weakness top-k of a model on a file."""
    from tokenizers import Tokenizer

    folder = Registry(registry.uri).resolve(registry.model, ref, registry.channel)
    manifest = verify(folder)
    task = load_task(folder / TASK)
    examples = read_labelled(path, task)
    if not examples:
        raise DataError(f"{path}: no labelled rows")
    split = to_split(examples, task)
    tok = Tokenizer.from_file(str(folder / TOKENIZER))
    ids = [e.ids for e in tok.encode_batch(split.texts)]
    probs = head_probs(OnnxRunner(folder / MODEL_INT8).logits(ids), task, manifest.temperatures)
    report = evaluate.summary(probs, split, task)
    for j, h in enumerate(task.heads):
        rows = split.hard[:, j] >= 0
        report["heads"][h.name]["ece"] = ece(probs[h.name][rows], split.hard[rows, j])
    report.update(model=manifest.name, version=manifest.version, rows=len(split),
                  input=str(path), slices=evaluate.slices(probs, split, task))
    return report
