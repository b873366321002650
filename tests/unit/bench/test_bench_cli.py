"""The root CLI mounts `bench` with every subcommand (a merge once dropped the mount silently)."""

from __future__ import annotations

from typer.testing import CliRunner

from secdistill.cli import app


def test_bench_commands_are_listed() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("inference", "pipeline", "cost", "naive", "all"):
        assert command in result.output
    result = runner.invoke(app, ["bench", "all", "--help"])
    assert "--json" in result.output
