"""The state: the only package that speaks SQL. Today one backend, SQLite (``sqlite.py``)."""

from notifier.store.sqlite import (
    SCHEMA_VERSION,
    DueDelivery,
    IntakeResult,
    Store,
    StoreError,
    WatchRow,
)

__all__ = ["SCHEMA_VERSION", "DueDelivery", "IntakeResult", "Store", "StoreError", "WatchRow"]
