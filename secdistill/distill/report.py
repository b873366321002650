"""A self-contained report (Markdown + HTML with inline SVG plots) from an eval JSON."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def head_table(ev: dict[str, Any]) -> list[str]:
    """Markdown rows: per head, student vs TF-IDF vs majority (accuracy / macro-F1)."""
    s, t, m = ev["student"]["heads"], ev["baselines"]["tfidf"]["heads"], ev["baselines"]["majority"]["heads"]
    rows = ["| head | n | student acc | TF-IDF acc | majority acc | student F1 | TF-IDF F1 | majority F1 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for h in s:
        rows.append(f"| {h} | {s[h]['n']} | {_pct(s[h]['accuracy'])} | {_pct(t[h]['accuracy'])} | "
                    f"{_pct(m[h]['accuracy'])} | {_pct(s[h]['macro_f1'])} | {_pct(t[h]['macro_f1'])} | "
                    f"{_pct(m[h]['macro_f1'])} |")
    for key, label in (("cvss_mean_accuracy", "CVSS mean acc"), ("cvss_mean_macro_f1", "CVSS mean F1")):
        rows.append(f"| **{label}** | | {_pct(ev['student'][key])} | {_pct(ev['baselines']['tfidf'][key])} "
                    f"| {_pct(ev['baselines']['majority'][key])} | | | |")
    return rows


def derived_table(ev: dict[str, Any]) -> list[str]:
    """Markdown rows for severity, score, exact vector and weakness top-k."""
    preds = {"student": ev["student"], "TF-IDF": ev["baselines"]["tfidf"],
             "majority": ev["baselines"]["majority"]}
    rows = ["| predictor | severity acc | severity F1 | score MAE | exact vector | cwe top-1 | cwe top-3 |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, p in preds.items():
        d, c = p.get("derived", {}), p.get("cwe_class", {})
        rows.append(f"| {name} | {_pct(d.get('severity_accuracy'))} | {_pct(d.get('severity_macro_f1'))} | "
                    f"{d.get('score_mae', float('nan')):.2f} | {_pct(d.get('exact_vector'))} | "
                    f"{_pct(c.get('top1'))} | {_pct(c.get('top3'))} |")
    return rows


def markdown(ev: dict[str, Any]) -> str:
    """The report as Markdown (tables only; the HTML adds plots)."""
    lines = [f"# {ev['model']} — distillation report", "",
             f"Validation examples: {ev['n_val']} (training: {ev['n_train']}); student: "
             f"{ev['student_info'].get('base_model')} × {ev['student_info'].get('num_layers')} layers. "
             "Student numbers are the **int8** model with calibrated temperatures.", "",
             "## Per head", "", *head_table(ev), "", "## Derived outputs", "", *derived_table(ev), "",
             "## Calibration (int8, cross-fitted on validation halves)", "",
             "| head | T | ECE before | ECE after | threshold | precision kept | kept |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for h, c in ev["calibration"].items():
        lines.append(f"| {h} | {c['temperature']:.2f} | {_pct(c['ece_before'])} | {_pct(c['ece_after'])} | "
                     f"{c['threshold']:.3f} | {_pct(c.get('precision_kept'))} | {_pct(c.get('kept'))} |")
    lines += ["", "## Cascade (teacher answers deferred items)", "",
              "| target keep | kept | kept CVSS acc | kept severity acc | system CVSS acc (oracle) |"
              " system CVSS acc (TF-IDF teacher) | system CVSS acc (student+TF-IDF teacher) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for p in ev["cascade"]:
        lines.append(f"| {_pct(p['target_keep'])} | {_pct(p['kept'])} | {_pct(p['kept_cvss_mean_accuracy'])} | "
                     f"{_pct(p['kept_severity_accuracy'])} | "
                     + " | ".join(_pct(p.get(f"system_{k}", {}).get("cvss_mean_accuracy"))
                                  for k in ("oracle", "tfidf", "ensemble")) + " |")
    lines += ["", "## int8 vs fp32 argmax agreement", "",
              ", ".join(f"{h}: {_pct(v)}" for h, v in ev["int8_vs_fp32"].items()), "",
              "## Slices (student, mean CVSS accuracy / cwe top-1)", ""]
    for kind, groups in ev["slices"].items():
        lines.append(f"**{kind}**: " + "; ".join(
            f"{k} (n={g['n']}) {_pct(g['cvss_mean_accuracy'])} / {_pct(g['cwe_top1'])}" for k, g in groups.items()))
        lines.append("")
    if ev.get("gates"):
        lines += ["## Gates", "", f"passed: **{ev['gates']['passed']}**", ""]
        lines += [f"- {name}: {'pass' if r['passed'] else 'FAIL'} (value {r.get('value')}, bound {r.get('bound')})"
                  for name, r in ev["gates"]["checks"].items()]
    lines += ["", "## Notes", "", *[f"- {n}" for n in ev.get("notes", [])]]
    return "\n".join(lines) + "\n"


def _svg_reliability(points: list[dict[str, float]], title: str, size: int = 160) -> str:
    pad = 20
    inner = size - 2 * pad
    dots = "".join(
        f'<circle cx="{pad + p["confidence"] * inner:.1f}" cy="{size - pad - p["accuracy"] * inner:.1f}" '
        f'r="{2 + min(6, p["count"] ** 0.5 / 4):.1f}" fill="#3366cc"/>' for p in points)
    return (f'<svg width="{size}" height="{size}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>'
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#ccc"/>{dots}'
            f'<text x="{pad}" y="14" font-size="11">{html.escape(title)}</text></svg>')


def _svg_cascade(points: list[dict[str, Any]], width: int = 360, height: int = 220) -> str:
    pad, lo = 30, 0.6
    def xy(keep: float, acc: float) -> str:
        x = pad + keep * (width - 2 * pad)
        y = height - pad - (max(acc, lo) - lo) / (1 - lo) * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"
    kept = " ".join(xy(p["kept"], p["kept_cvss_mean_accuracy"] or lo) for p in points)
    system = " ".join(xy(p["kept"], p.get("system_ensemble", {}).get("cvss_mean_accuracy") or lo)
                      for p in points)
    return (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
            f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#999"/>'
            f'<polyline points="{kept}" fill="none" stroke="#3366cc" stroke-width="2"/>'
            f'<polyline points="{system}" fill="none" stroke="#dc3912" stroke-width="2"/>'
            f'<text x="{pad}" y="18" font-size="11">CVSS mean acc (y {lo:.0%}–100%) vs share kept (x): '
            f'blue kept items, red system with student+TF-IDF teacher</text></svg>')


def _confusion_html(name: str, classes: list[str], matrix: list[list[int]]) -> str:
    peak = max(1, max(max(r) for r in matrix))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    body = "".join(
        f"<tr><th>{html.escape(classes[i])}</th>" + "".join(
            f'<td style="background:rgba(51,102,204,{v / peak:.2f})">{v}</td>' for v in row) + "</tr>"
        for i, row in enumerate(matrix))
    return f"<table class=cm><caption>{html.escape(name)} (rows true, columns predicted)</caption>" \
           f"<tr><th></th>{head}</tr>{body}</table>"


def write_reports(ev: dict[str, Any], dest: Path) -> None:
    """Write report.md and report.html (self-contained: no scripts, no external assets)."""
    md = markdown(ev)
    (dest / "report.md").write_text(md, "utf-8")
    plots = "".join(_svg_reliability(c["reliability_after"], f"{h} reliability")
                    for h, c in ev["calibration"].items())
    cms = "".join(_confusion_html(h, cm["classes"], cm["matrix"]) for h, cm in ev["confusion"].items())
    body = "".join(f"<pre>{html.escape(block)}</pre>" for block in md.split("\n\n"))
    page = ("<!doctype html><meta charset=utf-8><title>distillation report</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:auto}pre{white-space:pre-wrap}"
            ".cm{display:inline-table;margin:6px;border-collapse:collapse;font-size:11px}"
            ".cm td,.cm th{border:1px solid #ddd;padding:2px 4px}</style>"
            f"<h2>Cascade</h2>{_svg_cascade(ev['cascade'])}<h2>Reliability (after calibration)</h2>{plots}"
            f"<h2>Confusion matrices</h2>{cms}<h2>Tables</h2>{body}")
    (dest / "report.html").write_text(page, "utf-8")
