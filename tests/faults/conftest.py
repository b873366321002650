"""Fault tier: the integration tier's broker, topics, collectors and worker processes, reused.

The fixtures are imported, not copied, so both tiers start workers the same way. (``pytest_plugins``
is only honoured in the rootdir conftest, hence the import.)
"""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401 - fixtures are found by name
    broker,
    collect,
    kafka,
    namespace,
    start_worker,
    topics,
)

NO_DEFERRAL_HEADS = ("AV", "AC", "PR", "UI", "S", "C", "I", "A", "cwe_class")
