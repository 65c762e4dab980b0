"""Structured logs with the request id of the call being served on every line.

The id travels as `x-request-id` metadata from the client to the gateway and on to the
worker; servers put it in a context variable for the duration of the call.
"""

from __future__ import annotations

import contextvars
import json
import logging

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "request_id": request_id.get(),
                 "msg": record.getMessage()}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def request_id_of(context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id":
            return value
    return "-"
