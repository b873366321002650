"""Task spec: the bundled spec loads; inconsistent specs are refused; the input template renders."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from secdistill.schemas.cvss import METRICS
from secdistill.schemas.errors import TaskSpecError
from secdistill.schemas.records import Finding
from secdistill.schemas.task import TaskSpec, load_task


def _bundled() -> dict:
    text = resources.files("secdistill").joinpath("tasks/advisory-triage.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


def test_bundled_spec_loads() -> None:
    task = load_task()
    heads = task.head_map()
    assert list(heads)[:8] == list(METRICS)
    for metric, classes in METRICS.items():
        assert tuple(heads[metric].classes) == classes
    assert "cwe_class" in heads and "other" in heads["cwe_class"].classes
    assert task.derived == ["cvss31"]
    assert task.routing.default.name == "default"
    assert {"critical", "default"} <= set(task.routing.topics())
    assert 0.0 <= task.shadow_rate <= 1.0
    # The same content from a file path gives the same spec and hash.
    assert load_task(resources.files("secdistill").joinpath("tasks/advisory-triage.yaml")) == task


def test_sha256_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    task = load_task()
    assert task.sha256() == load_task().sha256()
    data = _bundled()
    data["heads"][0]["threshold"] = 0.81
    assert load_task(_write(tmp_path, data)).sha256() != task.sha256()


def test_slices_cover_num_logits_contiguously() -> None:
    task = load_task()
    slices = task.slices()
    assert list(slices) == [h.name for h in task.heads]
    pos = 0
    for head in task.heads:
        start, end = slices[head.name]
        assert start == pos and end - start == len(head.classes)
        pos = end
    assert pos == task.num_logits == sum(len(c) for c in METRICS.values()) + 16


def _mutations() -> list[tuple[str, object]]:
    def dup_head(d: dict) -> None:
        d["heads"].append(copy.deepcopy(d["heads"][0]))

    def dup_class(d: dict) -> None:
        d["heads"][-1]["classes"].append(d["heads"][-1]["classes"][0])

    def unknown_head_in_route(d: dict) -> None:
        d["routing"]["rules"].append({"name": "r", "topic": "t", "when": {"labels": {"nope": ["x"]}}})

    def unknown_class_in_route(d: dict) -> None:
        d["routing"]["rules"].append({"name": "r", "topic": "t", "when": {"labels": {"cwe_class": ["nope"]}}})

    def unknown_class_in_default(d: dict) -> None:
        d["routing"]["default"]["when"] = {"labels": {"AV": ["Z"]}}

    def cvss_without_metric_head(d: dict) -> None:
        d["heads"] = [h for h in d["heads"] if h["name"] != "PR"]

    def cvss_with_reordered_classes(d: dict) -> None:
        d["heads"][0]["classes"] = ["A", "N", "L", "P"]

    def severity_route_without_cvss(d: dict) -> None:
        d["derived"] = []

    def unknown_severity(d: dict) -> None:
        d["routing"]["rules"][0]["when"]["severity"] = ["SEVERE"]

    def bad_template_field(d: dict) -> None:
        d["input"]["template"] = "{title} {body}"

    def positional_template_field(d: dict) -> None:
        d["input"]["template"] = "{0} {description}"

    def unbalanced_template(d: dict) -> None:
        d["input"]["template"] = "{description"

    def single_class_head(d: dict) -> None:
        d["heads"][-1]["classes"] = ["only"]

    def threshold_out_of_range(d: dict) -> None:
        d["heads"][0]["threshold"] = 1.5

    def unknown_key(d: dict) -> None:
        d["surprise"] = True

    def no_default_route(d: dict) -> None:
        del d["routing"]["default"]

    return [(f.__name__, f) for f in (
        dup_head, dup_class, unknown_head_in_route, unknown_class_in_route, unknown_class_in_default,
        cvss_without_metric_head, cvss_with_reordered_classes, severity_route_without_cvss,
        unknown_severity, bad_template_field, positional_template_field, unbalanced_template,
        single_class_head, threshold_out_of_range, unknown_key, no_default_route,
    )]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[n for n, _ in _mutations()])
def test_invalid_specs_raise_task_spec_error(tmp_path: Path, name: str, mutate) -> None:
    data = _bundled()
    load_task(_write(tmp_path, data))  # the unmutated spec is fine
    mutate(data)
    with pytest.raises(TaskSpecError):
        load_task(_write(tmp_path, data))


def test_cvss_heads_are_not_needed_without_cvss31(tmp_path: Path) -> None:
    data = _bundled()
    data["derived"] = []
    data["heads"] = [h for h in data["heads"] if h["name"] == "cwe_class"]
    data["routing"]["rules"] = [r for r in data["routing"]["rules"] if "severity" not in r["when"]]
    task = load_task(_write(tmp_path, data))
    assert task.num_logits == 16


def test_invalid_yaml_raises_task_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "task.yaml"
    path.write_text("name: [unclosed\n", "utf-8")
    with pytest.raises(TaskSpecError):
        load_task(path)


def test_render_full_and_missing_fields() -> None:
    task = load_task()
    full = Finding(finding_id="1", title="SQL Injection", description="The login form is injectable.",
                   ecosystem="npm", package="left-pad")
    assert task.render(full) == "SQL Injection. The login form is injectable. [npm] left-pad"
    bare = Finding(finding_id="2", description="Heap overflow in the PNG decoder.")
    assert task.render(bare) == "Heap overflow in the PNG decoder."
    no_eco = Finding(finding_id="3", title="XSS", description="Comment field.", package="blog")
    assert task.render(no_eco) == "XSS. Comment field. blog"


def test_render_title_dropout() -> None:
    task = load_task()
    f = Finding(finding_id="1", title="Cross-site Scripting", description="Comment field is not escaped.",
                ecosystem="PyPI", package="django-blog")
    dropped = task.render(f, drop_title=True)
    assert dropped == "Comment field is not escaped. [PyPI] django-blog"
    assert "Cross-site" not in dropped
    assert task.render(f).startswith("Cross-site Scripting. ")


def test_task_spec_is_frozen() -> None:
    task = load_task()
    with pytest.raises(ValidationError):
        task.name = "other"  # type: ignore[misc]
    assert isinstance(task, TaskSpec) and task.name == "advisory-triage"
