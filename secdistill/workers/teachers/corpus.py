"""The bundled curated corpus (``secdistill/data/advisories.jsonl.gz``) as findings with labels."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from secdistill.schemas import codec
from secdistill.schemas.corpus import CORPUS_RESOURCE
from secdistill.schemas.cvss import METRICS, parse_vector
from secdistill.schemas.records import Finding


@dataclass(frozen=True)
class CorpusRecord:
    """One curated advisory: the finding a producer would send, and its labels per head."""

    id: str
    aliases: tuple[str, ...]
    finding: Finding
    labels: dict[str, str]
    title_generic: bool = False


def corpus_path() -> Path:
    """Path of the bundled corpus inside the installed package."""
    return Path(str(resources.files("secdistill").joinpath(CORPUS_RESOURCE)))


def labels_of(raw: dict[str, object]) -> dict[str, str]:
    """Head labels of a corpus row: the eight CVSS metrics (if a vector) and ``cwe_class``."""
    out: dict[str, str] = {}
    vector = raw.get("cvss_vector")
    if isinstance(vector, str) and vector:
        try:
            out.update(parse_vector(vector))
        except ValueError:
            pass  # a malformed vector leaves the CVSS heads unlabelled, like a missing one
    cwe = raw.get("cwe_class")
    if isinstance(cwe, str) and cwe:
        out["cwe_class"] = cwe
    return out


def read_corpus(path: Path | None = None) -> Iterator[CorpusRecord]:
    """Stream the corpus (gzip JSONL); rows with no label at all are skipped."""
    with gzip.open(path or corpus_path(), "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            raw = codec.loads(line, max_bytes=1 << 20)
            labels = labels_of(raw)
            if not labels:
                continue
            finding = Finding(
                finding_id=raw["record_id"],
                description=raw["description"],
                title=raw.get("title"),
                ecosystem=raw.get("ecosystem"),
                package=raw.get("package"),
                advisory_id=raw["id"],
                aliases=list(raw.get("aliases") or [])[:64],
                source=raw.get("source"),
            )
            yield CorpusRecord(
                id=raw["id"],
                aliases=tuple(raw.get("aliases") or ()),
                finding=finding,
                labels=labels,
                title_generic=bool(raw.get("title_generic")),
            )


__all__ = ["CorpusRecord", "METRICS", "corpus_path", "labels_of", "read_corpus"]
