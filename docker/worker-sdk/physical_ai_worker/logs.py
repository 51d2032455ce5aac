"""Log output of a worker: JSON lines on stderr, one object per record."""
from __future__ import annotations

import json
import logging
import sys
from typing import Any, Dict

LOGGER_NAME = "physical_ai_worker"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, the record's dict (or message), request fields and, for a
    record with exception info, the formatted traceback in ``stack``."""

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {"time": round(record.created, 6), "level": record.levelname.lower(), "logger": record.name}
        for key in ("request_id", "type"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if isinstance(record.msg, dict):
            line.update(record.msg)
        else:
            line["msg"] = record.getMessage()
        if record.exc_info:
            line["stack"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    return handler


def has_output(logger: logging.Logger) -> bool:
    """Whether a record of this logger reaches a handler that writes somewhere (NullHandler does not)."""
    current: Any = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def ensure_output(logger: logging.Logger) -> None:
    """Gives a logger that writes nowhere a stderr handler at INFO. A library does not configure logging, but a
    worker started with three lines (``ZMQServer(...)``, ``register_handler``, ``run()``) must still say where it
    listens and show the traceback of a failing handler; an application that configured logging keeps its own."""
    if has_output(logger):
        return
    logger.addHandler(stderr_handler())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
