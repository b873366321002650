"""The curated advisory corpus bundled with the package (see secdistill/data/README.md for licences)."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources
from typing import Any

from secdistill.schemas import codec
from secdistill.schemas.records import Finding

CORPUS_RESOURCE = "data/advisories.jsonl.gz"


def read_corpus_records() -> list[dict[str, Any]]:
    """The bundled advisories as plain dicts, file order."""
    raw = resources.files("secdistill").joinpath(CORPUS_RESOURCE).read_bytes()
    return [codec.loads(line, max_bytes=1 << 20) for line in gzip.decompress(raw).splitlines() if line.strip()]


def record_to_finding(rec: dict[str, Any], finding_id: str | None = None) -> Finding:
    """A corpus record as the Finding a producer would send (labels stripped)."""
    return Finding(
        finding_id=finding_id or rec["record_id"], description=rec["description"][:32_000],
        title=rec.get("title"), ecosystem=rec.get("ecosystem"), package=rec.get("package"),
        advisory_id=rec["id"], aliases=rec.get("aliases", [])[:64], source=rec.get("source"),
    )


def holdout_unit(vuln_id: str) -> float:
    """A stable number in [0, 1) per vulnerability id, for splits that every tool agrees on."""
    digest = hashlib.blake2b(vuln_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64
