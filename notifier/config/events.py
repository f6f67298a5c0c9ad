"""Event types, and the patterns an endpoint's ``events:`` may name them by.

An endpoint subscribes with exact names (``lip_sync.succeeded``, ``vendor.failing``), a whole
kind (``video.*``), an outcome across kinds (``*.failed``) or every job event (``*``, also
written ``*.*``). The config keeps the entries as written, so ``check`` and error messages
show what the user wrote; :func:`expand` is the one place that turns them into the concrete
types routing compares (``notifier.service.routing``), and :func:`problem` the one wording
for an entry that names nothing.

A wildcard over kinds never takes in an operational event (one about the daemon, not a
job): those stay opt-in, named exactly or by their family (``vendor.*``), as before kinds.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from notifier.kinds import JOB_EVENT_TYPES, KINDS, OUTCOMES
from notifier.models import OPERATIONAL_EVENT_TYPES, quoted

#: Every event type there is.
ALL_EVENT_TYPES: tuple[str, ...] = JOB_EVENT_TYPES + OPERATIONAL_EVENT_TYPES
#: Every job event, of every kind.
EVERY_JOB_EVENT = "*"
#: An endpoint that lists no ``events`` gets every job event (of every kind).
DEFAULT_EVENTS: tuple[str, ...] = (EVERY_JOB_EVENT,)

#: Operational events by family: ``vendor.*`` is vendor.failing and vendor.recovered.
_FAMILIES: Mapping[str, tuple[str, ...]] = {
    family: tuple(t for t in OPERATIONAL_EVENT_TYPES if t.partition(".")[0] == family)
    for family in dict.fromkeys(t.partition(".")[0] for t in OPERATIONAL_EVENT_TYPES)
}
assert not set(_FAMILIES) & set(KINDS), "a kind may not be named like an operational family"


def matches(entry: str) -> tuple[str, ...]:
    """The event types one ``events`` entry stands for, in the kind table's order; empty
    when it names nothing."""
    if entry in (EVERY_JOB_EVENT, "*.*"):
        return JOB_EVENT_TYPES
    if entry in ALL_EVENT_TYPES:
        return (entry,)
    head, dot, tail = entry.partition(".")
    if not dot:
        return ()
    if head == "*":
        return tuple(k.event(tail) for k in KINDS.values()) if tail in OUTCOMES else ()
    if tail == "*":
        kind = KINDS.get(head)
        return kind.events if kind is not None else _FAMILIES.get(head, ())
    return ()


def expand(entries: Iterable[str]) -> tuple[str, ...]:
    """The concrete event types a list of entries subscribes to, each once."""
    return tuple(dict.fromkeys(t for entry in entries for t in matches(entry)))


def _patterns() -> list[str]:
    """Every entry worth suggesting: exact names, kinds, outcomes, families, ``*``."""
    return [
        *ALL_EVENT_TYPES,
        *(f"{name}.*" for name in KINDS),
        *(f"*.{outcome}" for outcome in OUTCOMES),
        *(f"{family}.*" for family in _FAMILIES),
        EVERY_JOB_EVENT,
    ]


def problem(entry: object) -> str | None:
    """Why ``entry`` names no event, with what it could have meant; None when it names one."""
    if not isinstance(entry, str):
        return f"must be an event name or pattern (a string), got {type(entry).__name__}"
    if matches(entry):
        return None
    kinds = ", ".join(KINDS)
    outcomes = ", ".join(OUTCOMES)
    head, dot, tail = entry.partition(".")
    if head in KINDS or head == "*":
        meant = f"outcomes: {outcomes}, or * for all of them"
    elif head in _FAMILIES:
        meant = f"{head} events: {', '.join(_FAMILIES[head])}, or {head}.*"
    elif dot and (tail in OUTCOMES or tail == "*"):
        meant = f"kinds: {kinds}, or * for every kind"
    else:
        meant = (
            f"<kind>.<outcome>, <kind>.*, *.<outcome> or *; kinds: {kinds}; outcomes: "
            f"{outcomes}; operational events: {', '.join(OPERATIONAL_EVENT_TYPES)}"
        )
    close = difflib.get_close_matches(entry, _patterns(), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown event {quoted(entry)} ({meant}){hint}"
