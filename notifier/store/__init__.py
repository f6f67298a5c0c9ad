"""The state: the only package that speaks SQL. Today one backend, SQLite (``sqlite.py``)."""

from notifier.store.sqlite import (
    DB_ERRORS,
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_REMOVED,
    SCHEMA_VERSION,
    DueDelivery,
    IntakeResult,
    Store,
    StoreError,
    WatchRow,
)

__all__ = [
    "DB_ERRORS",
    "ENDPOINT_NOT_CONFIGURED",
    "ENDPOINT_REMOVED",
    "SCHEMA_VERSION",
    "DueDelivery",
    "IntakeResult",
    "Store",
    "StoreError",
    "WatchRow",
]
