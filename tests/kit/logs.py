"""Reading the daemon's JSON log: when a record was written, the events tests wait for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

ACQUIRED = "vendor lease acquired; this node calls the vendor"


def at(record: dict[str, Any]) -> float:
    """When the daemon wrote a log record (unix seconds)."""
    return datetime.fromisoformat(record["timestamp"]).timestamp()
