"""Settings sections both processes share. Sections are BaseModel; the BaseSettings root of each
process (workers.config, distill.config) composes them (pydantic-settings issue #279)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


def default_registry_uri() -> str:
    """A per-user data folder, so a fresh machine needs no configuration."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "secdistill" / "registry")


class KafkaSettings(BaseModel):
    """Where the brokers are and how to talk to them. Defaults suit the embedded dev broker."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "secdistill"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # The embedded Tansu broker answers JoinGroup after session_timeout/2: short timeouts make
    # group joins fast in dev and tests. Production overrides these (k8s/base/config.env).
    session_timeout_s: float = Field(6.0, gt=0)
    heartbeat_interval_s: float = Field(1.0, gt=0)
    request_timeout_s: float = Field(40.0, gt=0)

    def confluent_config(self) -> dict[str, object]:
        """librdkafka settings for confluent-kafka producers and consumers."""
        cfg: dict[str, object] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            cfg["sasl.mechanism"] = self.sasl_mechanism
            cfg["sasl.username"] = self.sasl_username or ""
            cfg["sasl.password"] = self.sasl_password.get_secret_value() if self.sasl_password else ""
        return cfg


class RegistrySettings(BaseModel):
    """The model registry and what this process follows in it."""

    model_config = ConfigDict(frozen=True)

    uri: str = Field(default_factory=default_registry_uri)
    model: str = "advisory-triage"
    channel: str = "stable"
    version: str | None = None  # pin a version instead of following the channel
    poll_s: float = Field(5.0, gt=0)


class TopicSettings(BaseModel):
    """Topic names per role. ``namespace`` prefixes every name (tests use a unique one each)."""

    model_config = ConfigDict(frozen=True)

    namespace: str = ""
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)
    input: str = "findings.raw.v1"
    labelled: str = "findings.labelled.v1"
    teacher: str = "findings.teacher.v1"
    teacher_labels: str = "findings.teacher-labels.v1"
    corrections: str = "findings.corrections.v1"
    review: str = "findings.review.v1"
    deadletter: str = "findings.dlq.v1"
