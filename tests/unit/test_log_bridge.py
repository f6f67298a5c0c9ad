"""Library errors that reach us through stdlib logging keep their exception (issue 8, 14)."""

from __future__ import annotations

import json
import logging

import pytest

from notifier import log as logs


def test_stdlib_errors_keep_type_and_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", json_lines=True)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("asyncio").error("Exception in callback Foo._kicked()", exc_info=True)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "Exception in callback Foo._kicked()"
    assert line["library"] == "asyncio"
    assert "ZeroDivisionError" in line["exception"]
    assert "Traceback" in line["exception"]
