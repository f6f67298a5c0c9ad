"""A terminal status becomes an event: its id, its body, and who gets it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from notifier.models import EXPIRED, REJECTED, TERMINAL_EVENT, Event, JobDetail


def new_event_id(now: float) -> str:
    """Time-ordered and unique: ``evt_`` + milliseconds (hex) + 64 random bits."""
    return f"evt_{int(now * 1000):012x}{secrets.token_hex(8)}"


def build_event(
    detail: JobDetail,
    labels: dict[str, str],
    now: float,
    last_seen_running_at: float | None = None,
    *,
    expired: bool = False,
    rejections: int | None = None,
) -> Event:
    """The event for a terminal ``detail`` (or, ``expired``, for the last look at a job given
    up unfinished; or, with ``rejections``, for an id the vendor said that many times it does
    not know, ``detail.msg`` being its answer); its body is what every endpoint receives."""
    data: dict[str, object] = {**detail.as_dict(), "labels": dict(labels)}
    if rejections is not None:
        event_type = REJECTED
        data["rejections"] = rejections
    else:
        event_type = EXPIRED if expired else TERMINAL_EVENT[detail.status]
    body = {
        "type": event_type,
        "timestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }
    return Event(
        event_id=new_event_id(now),
        job_id=detail.id,
        type=event_type,
        created_at=now,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        last_seen_running_at=last_seen_running_at,
    )


def route(
    event_type: str,
    watch_endpoints: Sequence[str] | None,
    subscriptions: Iterable[tuple[str, Sequence[str]]],
) -> list[str]:
    """Endpoint names that get this event.

    A watch that names endpoints notifies exactly those (that subscribe to the type);
    otherwise every endpoint whose ``events`` include it. A named endpoint that is not in
    ``subscriptions`` at all (not configured in the running daemon, e.g. added to the file
    but not reloaded yet) is kept: its delivery is parked until the endpoint exists.
    """
    chosen = []
    known = set()
    for name, events in subscriptions:
        known.add(name)
        if event_type not in events:
            continue
        if watch_endpoints is not None and name not in watch_endpoints:
            continue
        chosen.append(name)
    if watch_endpoints is not None:
        chosen += [name for name in dict.fromkeys(watch_endpoints) if name not in known]
    return chosen
