"""Library errors that reach us through stdlib logging keep their exception (issue 8, 14)."""

from __future__ import annotations

import io
import json
import logging
import sys

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
