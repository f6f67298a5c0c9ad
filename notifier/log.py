"""Structured logs (structlog) that never carry a secret.

JSON lines when stderr is not a terminal (systemd, files, pipes), a readable console otherwise.
Every configured secret, and every access token we learn, is replaced by ``***`` in any
value of any log line, whatever the code that logged it meant to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import structlog

REDACTED = "***"


class Redactor:
    """A structlog processor that masks known secret strings anywhere in an event."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        # Short strings would mask innocent text; real secrets are long.
        self._secrets.update(v for v in values if v and len(v) >= 6)

    def replace(self, values: Iterable[str]) -> None:
        self._secrets.clear()
        self.add(values)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub(f"{type(value).__name__}: {value}")
        return value

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            event_dict[key] = self.scrub(value)
        return event_dict


redactor = Redactor()
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class LineBudget:
    """At most one log line per ``every`` seconds for each key (an endpoint, a message): a
    fault that repeats at every turn must not flood the journal. :meth:`take` says whether
    this one may be logged and how many were held back since the last that was."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._last: dict[object, tuple[float, int]] = {}

    def take(self, key: object = None, now: float | None = None) -> int | None:
        """None: hold this one back; else how many were held back before it."""
        now = self._clock() if now is None else now
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.every:
            self._last[key] = (seen[0], seen[1] + 1)
            return None
        if len(self._last) > 1000:  # many distinct keys: forget, rather than grow
            self._last.clear()
        self._last[key] = (now, 0)
        return seen[1] if seen is not None else 0


#: A library line that repeats (asyncio's "socket.accept() out of system resource" once per
#: loop turn while descriptors run out: 89,941 lines in 25 s) is passed on at most this often;
#: the next one that passes says how many were held back.
LIBRARY_REPEAT_EVERY = 1.0


def _client_error(record: logging.LogRecord) -> bool:
    """aiohttp's "Error handling request" for a request it could not parse (a NUL byte in a
    header, a bad request line): the client's mistake, answered 400; not our traceback."""
    exc = record.exc_info[1] if record.exc_info else None
    return exc is not None and any(
        c.__name__ == "HttpProcessingError" and c.__module__.startswith("aiohttp")
        for c in type(exc).__mro__
    )


def _cancelled_job(record: logging.LogRecord) -> bool:
    """APScheduler's "Job ... raised an exception" for a job its shutdown cancelled before
    the job's coroutine began (the daemon's jobs catch their own cancellation once they
    run): a stop, not a failure."""
    exc = record.exc_info[1] if record.exc_info else None
    return record.name.startswith("apscheduler.") and isinstance(exc, asyncio.CancelledError)


class _StdlibBridge(logging.Handler):
    """Library warnings (stdlib logging) go through the same redacting pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self._repeats = LineBudget(LIBRARY_REPEAT_EVERY)

    def emit(self, record: logging.LogRecord) -> None:
        if _cancelled_job(record):
            return
        try:
            self._repeats.every = LIBRARY_REPEAT_EVERY  # read at each line (tests set it)
            held_back = self._repeats.take((record.name, str(record.msg)), record.created)
            if held_back is None:
                return
            extra: dict[str, Any] = {"repeated": held_back} if held_back else {}
            if _client_error(record):
                assert record.exc_info is not None and record.exc_info[1] is not None
                error = str(record.exc_info[1]).splitlines()[0][:200]
                get_logger(library=record.name).warning(
                    "bad HTTP request from a client; answered 400", error=error, **extra
                )
                return
            if record.exc_info and record.exc_info[0] is not None:
                # asyncio's "Exception in callback" and APScheduler's job errors carry the
                # cause only here: keep its type and traceback (format_exc_info renders it).
                extra["exc_info"] = record.exc_info
            get_logger(library=record.name).log(record.levelno, record.getMessage(), **extra)
        except Exception:
            self.handleError(record)


#: syslog priorities, so journald files each line at its level (`journalctl -p warning`).
_PRIORITY = {
    "debug": 7,
    "info": 6,
    "warning": 4,
    "warn": 4,
    "error": 3,
    "exception": 3,
    "critical": 2,
}


def _journal_priority(logger: Any, method: str, line: Any) -> Any:
    return f"<{_PRIORITY.get(method, 6)}>{line}"


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """Whatever ``sys.stderr`` is when a line is logged, not when logging was set up (a
    test that captures stderr sees the lines whatever an earlier test configured)."""
    return structlog.PrintLogger(sys.stderr)


def configure(level: str = "info", *, json_lines: bool | None = None) -> None:
    """Set up structlog for this process; safe to call again (e.g. on reload)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=True)
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
        renderer,
    ]
    # Under systemd, stderr is a journal stream: a "<N>" prefix sets the line's priority.
    if json_lines and os.environ.get("JOURNAL_STREAM"):
        processors.append(_journal_priority)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging; their INFO lines can carry URLs (Slack URLs are
    # secrets) and APScheduler narrates every tick. Keep only their real problems.
    logging.basicConfig(handlers=[_StdlibBridge()], level=logging.WARNING, force=True)
    for name in ("httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler.executors").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def get_logger(**context: Any) -> Any:
    return structlog.get_logger("chanjing-notifier", **context)
