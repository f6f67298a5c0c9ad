"""A terminal status becomes an event: its id, its body, and who gets it.

A job event's id (the ``webhook-id`` receivers de-duplicate on) is derived from what the
event is, not drawn at random: the job, the event type, how often the watch was reopened and
the vendor account (only when it is not ``default``: the ids of a state from before accounts
stay what receivers saw, across the upgrade).
An event made a second time, because the state that held it was lost (a PostgreSQL replica
promoted before the commit reached it, see docs/several-nodes.md), therefore reaches the
receivers with the id they already saw; a reopened watch's next event is a new event with
an id of its own. Operational events are one per occurrence and keep random ids.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from notifier import kinds
from notifier.models import DEFAULT_ACCOUNT, Event, JobDetail

#: Separates the inputs of a job event's id from any other use of the same hash.
_JOB_EVENT_KEY = b"chanjing-notifier job event v1"
#: Hex digits after ``evt_``: as many as a random id has, so receivers see one format.
_ID_HEX = 28


def new_event_id(now: float) -> str:
    """Time-ordered and unique (operational events): ``evt_`` + milliseconds (hex) + 64
    random bits."""
    return f"evt_{int(now * 1000):012x}{secrets.token_hex(8)}"


def job_event_id(job_id: str, event_type: str, reopens: int, account: str = DEFAULT_ACCOUNT) -> str:
    """The id of this job's ``event_type`` event after ``reopens`` reopens on ``account``:
    the same inputs give the same id on every node and after any loss of state, so a
    receiver that de-duplicates on ``webhook-id`` takes an event made again as the one it
    has; the same job id on two accounts is two jobs, so two ids. The default account adds
    nothing to the hash: its ids are the ones made before accounts existed. ``evt_`` + 112
    bits of SHA-256 (the length of a random id: a receiver's column still fits it)."""
    digest = hashlib.sha256(_JOB_EVENT_KEY)
    parts = [job_id, event_type, str(reopens)]
    if account != DEFAULT_ACCOUNT:
        parts.append(account)
    for part in parts:
        digest.update(b"\x00" + part.encode("utf-8", "surrogatepass"))
    return f"evt_{digest.hexdigest()[:_ID_HEX]}"


def build_event(
    detail: JobDetail,
    labels: dict[str, str],
    now: float,
    last_seen_running_at: float | None = None,
    *,
    expired: bool = False,
    rejections: int | None = None,
    reopens: int = 0,
) -> Event:
    """The event for a terminal ``detail`` (or, ``expired``, for the last look at a job given
    up unfinished; or, with ``rejections``, for an id the vendor said that many times it does
    not know, ``detail.msg`` being its answer); its body is what every endpoint receives.
    ``reopens``: the watch's count (``WatchRow.reopens``), part of the event's id. The
    account is the detail's (the client that fetched it): the data names it, and the event
    is that account's."""
    kind = kinds.get(detail.kind)
    # Lip-sync's payload is fixed by the contract (PRODUCT.md) as it was before kinds: its
    # type says the kind. Every other kind's data names it as well.
    data: dict[str, object] = detail.as_dict()
    if not kind.payload_fields:
        data["kind"] = kind.name
    data["labels"] = dict(labels)
    data["account"] = detail.account
    if rejections is not None:
        event_type = kind.event("rejected")
        data["rejections"] = rejections
    elif expired:
        event_type = kind.event("expired")
    elif detail.terminal:
        event_type = kind.event(detail.phase.value)
    else:
        raise ValueError(f"no event for a job that is {detail.phase.value}")
    body = {
        "type": event_type,
        "timestamp": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }
    return Event(
        event_id=job_event_id(detail.id, event_type, reopens, detail.account),
        job_id=detail.id,
        type=event_type,
        created_at=now,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        last_seen_running_at=last_seen_running_at,
        account=detail.account,
    )


#: One endpoint's routing: its name, the concrete event types it takes, and the accounts
#: whose events it takes (None: every account's), in the config's order.
Route = tuple[str, tuple[str, ...], tuple[str, ...] | None]
#: (endpoint name, the event types it takes of one account's events).
Subscription = tuple[str, Sequence[str]]


def account_view(routes: Iterable[Route], account: str | None) -> list[Subscription]:
    """What each endpoint takes of ``account``'s events: an endpoint whose accounts leave it
    out takes none (it stays listed, with no type, so that :func:`route` does not keep it
    for a watch that names it, as it keeps an endpoint not configured yet). ``None``: an
    event of no account (the daemon's own), which every endpoint may take."""
    return [
        (name, events if account is None or accounts is None or account in accounts else ())
        for name, events, accounts in routes
    ]


def route(
    event_type: str,
    watch_endpoints: Sequence[str] | None,
    subscriptions: Iterable[Subscription],
) -> list[str]:
    """Endpoint names that get this event.

    ``subscriptions`` hold concrete event types: an endpoint's patterns (``video.*``,
    ``*.failed``) were expanded by ``notifier.service.routing.subscriptions``, and they are
    one account's (:func:`account_view`: the poller's are its lane's account's).
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
