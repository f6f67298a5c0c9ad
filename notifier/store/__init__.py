"""The state: the only package that speaks SQL. Today one backend, SQLite (``sqlite.py``);
``rows`` holds what it hands out, ``errors`` what goes wrong with the file."""

from notifier.store.errors import (
    BUSY_CAUSE,
    DB_ERRORS,
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
    WatchRow,
)
from notifier.store.schema import SCHEMA_VERSION
from notifier.store.sqlite import Store

__all__ = [
    "BUSY_CAUSE",
    "DB_ERRORS",
    "ENDPOINT_NOT_CONFIGURED",
    "ENDPOINT_REMOVED",
    "SCHEMA_VERSION",
    "DueDelivery",
    "IntakeResult",
    "Store",
    "StoreError",
    "StoreMissing",
    "StoreUnavailable",
    "WatchRow",
    "default_state_path",
    "prepare_state_dir",
]
