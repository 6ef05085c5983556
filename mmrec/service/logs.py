"""The service's logs: one line per record, as text for people or as JSON for log collectors.

* Every record is one line. In JSON (``--log-format json``) it is an object with ``ts`` (UTC, ISO 8601),
  ``level``, ``logger``, ``message``, the request id of the request being served when there is one, and the
  record's structured fields (an access line has ``method``, ``route``, ``path``, ``status``,
  ``duration_ms``, ``client``, ``db_version``).
* Client faults (a bad request, an aborted upload, a slow client) are logged as one line without a
  traceback. Only a bug (an error the service did not expect) carries its traceback, and in JSON it is a
  field of the same line, so a collector never sees a multi-line event split apart.
* The request id lives in a context variable set by the request middleware; worker threads started with
  ``anyio.to_thread`` copy the context, so what the engine logs while serving a request carries its id.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ACCESS_LOGGER",
    "REQUEST_ID",
    "JsonFormatter",
    "TextFormatter",
    "Throttled",
    "configure_logging",
]

#: The request id of the request being served in this context (``None`` outside requests).
REQUEST_ID: ContextVar[str | None] = ContextVar("mmrec_request_id", default=None)
#: The logger of the one-line-per-request access log.
ACCESS_LOGGER = "mmrec.access"

# Attributes every LogRecord has: whatever else a record carries came from ``extra=`` and is a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = record.__dict__.keys() - _STANDARD
    return {k: record.__dict__[k] for k in record.__dict__ if k in extra and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = REQUEST_ID.get()
        if rid is not None:
            out["request_id"] = rid
        out.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            exc = record.exc_info[1]
            out["error"] = f"{type(exc).__name__}: {exc}"
            out["traceback"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2025-01-01 12:00:00,123 INFO mmrec.access: GET /items 200 3.1 ms id=…``: one line, fields folded in."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        # The first line only: a traceback (bugs only) follows on the next lines, as Python prints it.
        line = super().formatMessage(record)
        rid = REQUEST_ID.get()
        if rid is not None and record.name != ACCESS_LOGGER and record.levelno >= logging.WARNING:
            line += f" (request {rid})"
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (told apart from handlers others installed)."""


def configure_logging(log_format: str = "text", log_level: str = "info", *, access_log: bool = True) -> None:
    """Send every log record (mmrec's, uvicorn's, the libraries') to stderr in one format.

    Parameters
    ----------
    log_format : {"text", "json"}
    log_level : {"critical", "error", "warning", "info", "debug"}
        The access log is at ``info``: ``warning`` and above leave one line per problem only.
    access_log : bool
        Log one line per request.

    Notes
    -----
    Calling it again replaces what an earlier call installed (tests and embedders may call it twice).
    """
    level = getattr(logging, log_level.upper())
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "mmrec"):
        logger = logging.getLogger(name)
        logger.handlers.clear()  # uvicorn's own handlers would print a second, differently formatted line
        logger.setLevel(level)
        logger.propagate = True
    # uvicorn's access log is replaced by ours (one line with the route, the duration and the request id).
    logging.getLogger("uvicorn.access").disabled = True
    access = logging.getLogger(ACCESS_LOGGER)
    access.disabled = not access_log
    access.setLevel(level)


class Throttled:
    """A warning logged at most once per ``interval`` seconds, with the count of what it summarises.

    200 slow clients closed in one second are one line ("closed 200 connections …"), not 200.

    Parameters
    ----------
    logger : logging.Logger
    message : str
        ``%d``-style format for the count, e.g. ``"closed %d connection(s) that sent no headers in time"``.
    interval : float
        Seconds between two lines.
    """

    def __init__(self, logger: logging.Logger, message: str, interval: float = 10.0) -> None:
        self.logger = logger
        self.message = message
        self.interval = interval
        self._pending = 0
        self._last = -float("inf")
        self._lock = threading.Lock()

    def __call__(self, **fields: Any) -> None:
        """Count one occurrence; log the count when the last line is older than ``interval``."""
        now = time.monotonic()
        with self._lock:
            self._pending += 1
            if now - self._last < self.interval:
                return
            count, self._pending, self._last = self._pending, 0, now
        self.logger.warning(self.message, count, extra={"count": count, **fields})
