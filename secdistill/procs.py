"""Start fleet processes (`python -m secdistill ...`) with an explicit environment, and stop them.

Used by the demo, the benchmarks and the tests, so all three run the real CLI entry points.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from secdistill.workers.broker import die_with_parent


def fleet_env(base: dict[str, str] | None = None, **settings: object) -> dict[str, str]:
    """Environment for a child process: SECDISTILL_* from keyword args like kafka__bootstrap_servers."""
    env = dict(os.environ if base is None else base)
    for key, value in settings.items():
        if value is not None:
            env[f"SECDISTILL_{key.upper()}"] = str(value)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


@dataclass
class FleetProcess:
    """A running `secdistill <command>` child with its health port."""

    name: str
    proc: subprocess.Popen[bytes]
    web_port: int | None
    log_path: Path

    def get(self, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
        """HTTP GET on the process's web port."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=timeout_s) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def ready(self) -> dict[str, object] | None:
        """The /readyz document when ready, else None."""
        try:
            status, body = self.get("/readyz")
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, object]:
        """Poll /readyz until it answers 200; raise with the log tail if the process died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            doc = self.ready()
            if doc:
                return doc
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout_s} s:\n{self.tail()}")

    def terminate(self, timeout_s: float = 40.0) -> int:
        """SIGTERM and wait (SIGKILL after the timeout); return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        """Last lines of the process log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_fleet_process(command: list[str], env: dict[str, str], log_path: Path,
                        web_port: int | None = None, name: str | None = None) -> FleetProcess:
    """Start `python -m secdistill <command>` with output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "secdistill", *command], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
    return FleetProcess(name or " ".join(command), proc, web_port, log_path)
