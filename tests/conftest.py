"""What every layer of the suite shares: logging undone after each test, Hypothesis's profile,
the package byte-compiled once, and a throwaway PostgreSQL with a fresh database a test on
both state backends. The layers' own conftests (unit/, integration/, acceptance/) take the
fixtures they need from :mod:`tests.kit.fixtures`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck, settings

from notifier import log as logs
from tests.kit import PgServer, PgUnavailable

# Hypothesis times each example (a 200 ms deadline, a "generation is slow" check): on a
# shared two-core machine running four workers that fails tests for the machine's load, not
# for the code. What is drawn and checked is unchanged.
settings.register_profile(
    "shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("shared-machine")


def pytest_configure(config: pytest.Config) -> None:
    """Byte-compile the package once, in the controlling process, before any worker runs.
    With PYTHONDONTWRITEBYTECODE set (as on the shared machines) nothing else writes the
    .pyc files, and every daemon and CLI child the suite starts would compile every module
    of ours again: ~0.15 s of CPU a child. A no-op when the files are current."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        import compileall

        import notifier

        compileall.compile_dir(Path(notifier.__file__).parent, quiet=1)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Logging is process-wide: what a test configures is undone before the next one runs.
    ``notifier.log.configure`` (called by the CLI, the demo and a daemon's reload in the test
    process) sets structlog's level filter and processors, replaces the stdlib root handlers
    and sets library loggers' levels; the redactor collects every secret it is told of.
    Without this a test saw what an earlier one left (e.g. a level filter at INFO that
    hid the debug lines ``structlog.testing.capture_logs`` waits for)."""
    config = structlog.get_config()
    processors = config["processors"]
    saved_processors = list(processors)  # capture_logs edits the list in place
    manager = logging.Logger.manager
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    loggers = {
        name: (lg.level, lg.disabled, lg.propagate, list(lg.handlers))
        for name, lg in manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    disable = manager.disable
    secrets = set(logs.redactor._secrets)
    yield
    processors[:] = saved_processors
    structlog.configure(**config)
    root.handlers[:] = root_handlers
    root.setLevel(root_level)
    for name, lg in list(manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger):
            continue
        if name not in loggers:  # made during the test: as a fresh logger is
            lg.setLevel(logging.NOTSET)
            continue
        level, lg.disabled, lg.propagate, handlers = loggers[name]
        lg.setLevel(level)
        lg.handlers[:] = handlers
    logging.disable(disable)
    logs.redactor.replace(secrets)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL for the session, started only when a test asks for it
    (``CHANJING_NOTIFIER_TEST_PG`` names an existing server instead)."""
    try:
        with PgServer.start() as server:
            yield server
    except PgUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards (open connections too)."""
    url = pg_server.database()
    yield url
    pg_server.drop(url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store's behaviour tests run on both backends."""
    return str(request.param)
