"""`secdistill broker`: the embedded broker in the foreground, stopped cleanly by SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import threading

from secdistill.workers.broker import start_broker
from secdistill.workers.errors import BrokerError


def serve_broker(host: str, port: int | None) -> int:
    """Start Tansu, print the bootstrap address, wait for a signal; return the exit code."""
    try:
        broker = start_broker(port, host)
    except BrokerError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sys.stdout.write(f"{broker.bootstrap}\n")
    sys.stdout.flush()
    sys.stderr.write(f"broker ready: export SECDISTILL_KAFKA__BOOTSTRAP_SERVERS={broker.bootstrap}\n")
    while not stop.wait(0.5):
        if broker.process.poll() is not None:
            sys.stderr.write(f"error: broker exited with code {broker.process.returncode}\n")
            return 1
    broker.stop()
    return 0
