"""The state: the only package that speaks SQL. One :class:`Store` (``state.py``), composed of
parts that each own their tables (``watches``, ``deliveries``, ``lease``, ``marks``,
``listings``) on one backend (``base.py`` opens it): SQLite (``sqlite.py``, the embedded
default) or PostgreSQL (``postgres.py``, for several nodes). ``schema`` loads the SQL of
``sql/``; ``rows`` holds what the store hands out, ``errors`` what goes wrong.
:func:`open_store` opens the state a :class:`StateSettings` names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from notifier.store.errors import (
    BUSY_CAUSE,
    DEFAULT_STATE_PATH,
    StoreError,
    StoreMissing,
    StoreUnavailable,
    default_state_path,
    prepare_state_dir,
)
from notifier.store.rows import (
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_REMOVED,
    DueDelivery,
    IntakeResult,
    Observation,
    WatchRow,
)
from notifier.store.schema import SCHEMA_VERSION
from notifier.store.state import Store

if TYPE_CHECKING:
    from notifier.store.errors import DB_ERRORS
else:

    def __getattr__(name: str) -> object:
        # DB_ERRORS names psycopg's error class: imported when first asked for (see errors).
        if name == "DB_ERRORS":
            from notifier.store import errors

            return errors.DB_ERRORS
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class StateSettings:
    """Where the state is (``state.url`` or ``state.path``; built by
    :mod:`notifier.service.settings`): the store's own settings, so the store reads no
    config section. It says where, nothing more: what the daemon does with the state
    (retention, the lease, its node name) is the daemon's."""

    #: The SQLite file, when there is no ``url``.
    path: Path = DEFAULT_STATE_PATH
    #: ``postgresql://USER:PASS@HOST:PORT/DB``: the state in PostgreSQL, shared by several
    #: nodes. Out of the repr (it may hold a password): :func:`describe_state` names it.
    url: str | None = field(default=None, repr=False)

    @property
    def shared(self) -> bool:
        """A PostgreSQL state, which several nodes may share (a SQLite file has one daemon)."""
        return self.url is not None


def open_store(state: StateSettings, **kwargs: Any) -> Store:
    """The store ``state`` names: its ``url`` (PostgreSQL) or its ``path`` (SQLite).
    ``kwargs``: ``clock``, ``busy_timeout``, ``create`` (see :class:`Store`)."""
    return Store(state.url if state.url is not None else state.path, **kwargs)


def describe_state(state: StateSettings) -> str:
    """Where ``state`` points, for messages: the file, or the database without password."""
    if state.url is None:
        return str(state.path)
    from notifier.store.postgres import describe

    return describe(state.url)[0]


__all__ = [
    "BUSY_CAUSE",
    "DB_ERRORS",
    "DEFAULT_STATE_PATH",
    "ENDPOINT_NOT_CONFIGURED",
    "ENDPOINT_REMOVED",
    "SCHEMA_VERSION",
    "DueDelivery",
    "IntakeResult",
    "Observation",
    "StateSettings",
    "Store",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "WatchRow",
    "default_state_path",
    "describe_state",
    "open_store",
    "prepare_state_dir",
]
