"""The state: the only package that speaks SQL. Today one backend, SQLite (``sqlite.py``)."""

from notifier.store.errors import StoreMissing, default_state_path, prepare_state_dir
from notifier.store.sqlite import (
    BUSY_CAUSE,
    DB_ERRORS,
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_REMOVED,
    SCHEMA_VERSION,
    DueDelivery,
    IntakeResult,
    Store,
    StoreError,
    StoreUnavailable,
    WatchRow,
)

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
