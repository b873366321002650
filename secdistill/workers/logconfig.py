"""configure_logging(): one dictConfig, used by our CLI and passed to Faust's Worker."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

_state: dict[str, Any] = {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (what log shippers in k8s expect)."""

    def format(self, record: logging.LogRecord) -> str:
        from secdistill.schemas import codec

        doc = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return codec.dumps(doc).decode("utf-8")


def logging_dict(level: str = "INFO", json_lines: bool = False) -> dict[str, Any]:
    """The dictConfig both our code and Faust use: plain text locally, JSON lines in k8s."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"}
        if json_lines
        else {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "aiokafka": {"level": "WARNING"},
            "faust": {"level": "WARNING" if level.upper() == "INFO" else level.upper()},
            "mode": {"level": "WARNING" if level.upper() == "INFO" else level.upper()},
        },
    }


def configure_logging(level: str = "INFO", json_lines: bool = False) -> dict[str, Any]:
    """Apply the logging config once per process and return it."""
    cfg = logging_dict(level, json_lines)
    logging.config.dictConfig(cfg)
    logging.captureWarnings(True)
    _state["config"] = cfg
    return cfg


def current_config() -> dict[str, Any]:
    """The config applied by configure_logging (default INFO text if never called)."""
    return _state.get("config") or logging_dict()
