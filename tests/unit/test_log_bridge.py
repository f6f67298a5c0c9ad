"""Library errors that reach us through stdlib logging keep their exception (issue 8, 14)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest

from notifier import log as logs


def test_stdlib_errors_keep_type_and_traceback() -> None:
    real, sys.stderr = sys.stderr, io.StringIO()
    try:
        logs.configure("info", json_lines=True)  # binds the logger to this stderr
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            logging.getLogger("asyncio").error("Exception in callback Foo._kicked()", exc_info=True)
        output = sys.stderr.getvalue()
    finally:
        sys.stderr = real  # the logging config itself is undone by conftest's restore_logging
    line = json.loads(output.strip().splitlines()[-1])
    assert line["event"] == "Exception in callback Foo._kicked()"
    assert line["library"] == "asyncio"
    assert "ZeroDivisionError" in line["exception"]
    assert "Traceback" in line["exception"]


def test_a_library_line_that_repeats_is_passed_on_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: asyncio logged "socket.accept() out of system resource" at every turn of
    the loop while descriptors ran out (89,941 ERROR lines in 25 s)."""
    real, sys.stderr = sys.stderr, io.StringIO()
    try:
        logs.configure("info", json_lines=True)
        for _ in range(1000):
            logging.getLogger("asyncio").error("socket.accept() out of system resource")
        logging.getLogger("asyncio").error("another problem")
        monkeypatch.setattr(logs, "LIBRARY_REPEAT_EVERY", 0.0)
        logging.getLogger("asyncio").error("socket.accept() out of system resource")
        output = sys.stderr.getvalue()
    finally:
        sys.stderr = real
    lines = [json.loads(line) for line in output.strip().splitlines()]
    assert [(line["event"], line.get("repeated")) for line in lines] == [
        ("socket.accept() out of system resource", None),
        ("another problem", None),
        ("socket.accept() out of system resource", 999),
    ]


def test_a_job_cancelled_by_the_schedulers_shutdown_is_no_error() -> None:
    """APScheduler's shutdown cancels a job whose task was made but had not started: it
    logged that as an error with a CancelledError traceback (seen once in CI)."""
    real, sys.stderr = sys.stderr, io.StringIO()
    try:
        logs.configure("info", json_lines=True)
        job_log = logging.getLogger("apscheduler.executors.default")
        for exc in (asyncio.CancelledError(), RuntimeError("boom")):
            try:
                raise exc
            except BaseException:
                job_log.error('Job "poll" raised an exception', exc_info=True)
        output = sys.stderr.getvalue()
    finally:
        sys.stderr = real
    (line,) = [json.loads(line) for line in output.strip().splitlines()]
    assert "RuntimeError: boom" in line["exception"]  # a real failure is still reported
