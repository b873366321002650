"""Every SECDISTILL_* variable, from the settings classes themselves (README table, `secdistill settings`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr


def _walk(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, Any, str]]:
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _walk(ann, f"{prefix}{name.upper()}__")
            continue
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        yield f"{prefix}{name.upper()}", default, field.description or ""


def settings_rows() -> list[tuple[str, str, str]]:
    """(variable, default, used by) for the fleet's and the distillation job's settings."""
    from secdistill.workers.config import WorkerSettings

    rows: dict[str, tuple[str, set[str]]] = {}
    classes: list[tuple[str, type[BaseModel]]] = [("fleet", WorkerSettings)]
    try:
        from secdistill.distill.config import DistillSettings

        classes.append(("distill", DistillSettings))
    except ImportError:  # worker-only install
        pass
    for who, cls in classes:
        for var, default, _ in _walk(cls, "SECDISTILL_"):
            shown = "(secret)" if isinstance(default, SecretStr) else repr(default) if default is not None else "—"
            if var == "SECDISTILL_REGISTRY__URI":
                shown = "$XDG_DATA_HOME/secdistill/registry (~/.local/share/...)"
            prev = rows.get(var)
            rows[var] = (prev[0] if prev else shown, (prev[1] if prev else set()) | {who})
    return [(var, d, ", ".join(sorted(w))) for var, (d, w) in sorted(rows.items())]


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| variable | default | used by |", "|---|---|---|"]
    lines += [f"| `{v}` | `{d}` | {w} |" for v, d, w in settings_rows()]
    return "\n".join(lines)
