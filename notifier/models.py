"""Plain data passed between the layers; no I/O here."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from notifier import kinds
from notifier.kinds import Phase

#: The vendor account of a state's rows when nobody names one (issue 22): the `chanjing:`
#: section's, and every row of a state older than schema 19.
DEFAULT_ACCOUNT = "default"

#: Job ids we accept: what Chanjing issues (hex-ish) with a little slack for other tokens.
JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
#: Label keys: short identifiers, so they survive Slack fields and log lines.
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

#: Lip-sync's job events (every kind's: :data:`notifier.kinds.JOB_EVENT_TYPES`).
SUCCEEDED = "lip_sync.succeeded"
FAILED = "lip_sync.failed"
#: The watch was given up after ``give_up_after`` without a terminal status.
EXPIRED = "lip_sync.expired"
#: The vendor kept answering that it does not know the job id (40000, e.g. "record not
#: found"): the watch was given up without ever seeing the job.
REJECTED = "lip_sync.rejected"
EVENT_TYPES = (SUCCEEDED, FAILED, EXPIRED, REJECTED)
#: Events about the daemon itself: only for endpoints that list them (not in the default).
ENDPOINT_FAILING = "endpoint.failing"
ENDPOINT_RECOVERED = "endpoint.recovered"
DELIVERY_DEAD = "delivery.dead"
VENDOR_FAILING = "vendor.failing"
VENDOR_RECOVERED = "vendor.recovered"
OPERATIONAL_EVENT_TYPES = (
    ENDPOINT_FAILING,
    ENDPOINT_RECOVERED,
    DELIVERY_DEAD,
    VENDOR_FAILING,
    VENDOR_RECOVERED,
)


class WatchState(StrEnum):
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    #: The vendor does not know the id (it ended with ``lip_sync.rejected``). Watches the
    #: vendor rejected before this state existed stay ``failed``, with the same note.
    REJECTED = "rejected"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


#: How much of a rejected value a message quotes: enough to recognise it, never a megabyte.
QUOTE_LIMIT = 60


def quoted(value: str) -> str:
    """``value`` for a message: repr'd (control characters and lone surrogates escaped),
    cut to QUOTE_LIMIT characters."""
    if len(value) <= QUOTE_LIMIT:
        return repr(value)
    return f"{value[:QUOTE_LIMIT]!r}… ({len(value)} characters)"


def has_surrogate(text: str) -> bool:
    """A lone UTF-16 surrogate (``"\ud800"``): valid in a Python str and in JSON text, but
    not encodable as UTF-8, so it would fail every write, log line and event body later."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def job_id_problem(job_id: object) -> str | None:
    """Why ``job_id`` is not acceptable, or None when it is."""
    if not isinstance(job_id, str):
        return f"job id must be a string, got {type(job_id).__name__}"
    if not JOB_ID_RE.fullmatch(job_id):  # fullmatch: "$" would let a trailing newline in
        return (
            f"invalid job id {quoted(job_id)}: use 1-128 characters of letters, digits, '_', "
            "'.', ':' or '-', starting with a letter or digit"
        )
    return None


#: Labels travel in every event to every endpoint: a watch has at most this many, of at most
#: this much text together (merging labels into a known watch is checked too).
MAX_LABELS = 32
MAX_LABELS_TEXT = 8192
#: A label value's characters (a number's or boolean's as written by ``str``).
MAX_LABEL_VALUE = 512
#: Numeric label values lie within ±this: exact as a double in every JSON reader (a bigger
#: one would arrive changed, or as infinity), so NaN and Infinity are out too.
MAX_LABEL_NUMBER = 2**53 - 1


def labels_problem(labels: object) -> str | None:
    """Why ``labels`` is not a flat string→string mapping, or None."""
    if not isinstance(labels, dict):
        return f"labels must be a mapping of key: value, got {type(labels).__name__}"
    if len(labels) > MAX_LABELS:
        return f"at most {MAX_LABELS} labels, got {len(labels)}"
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.fullmatch(key):
            shown = quoted(key) if isinstance(key, str) else repr(key)
            return f"invalid label key {shown}: use letters, digits, '_', '.', '-' (max 64)"
        if not isinstance(value, str | int | float | bool):
            return f"label {key!r} must have a scalar value, got {type(value).__name__}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"label {key!r} must be a finite number or a string, got {value!r}"
        if isinstance(value, int | float) and not -MAX_LABEL_NUMBER <= value <= MAX_LABEL_NUMBER:
            return (
                f"label {key!r} must be a number from -{MAX_LABEL_NUMBER} to "
                f"{MAX_LABEL_NUMBER} (or a string)"
            )
        if len(str(value)) > MAX_LABEL_VALUE:
            return f"label {key!r} is longer than {MAX_LABEL_VALUE} characters"
        if isinstance(value, str) and has_surrogate(value):
            return f"label {key!r} contains a lone UTF-16 surrogate (not valid Unicode text)"
    text = sum(len(str(k)) + len(str(v)) for k, v in labels.items())
    if text > MAX_LABELS_TEXT:
        return f"labels hold {text} characters together, at most {MAX_LABELS_TEXT}"
    return None


def unknown_endpoint(name: str, configured: Collection[str]) -> str:
    """The one wording for an endpoint name that is not configured: every intake path (and
    the config's own ``intake.endpoints`` / ``watch.discover.endpoints``) says it so."""
    return f"unknown endpoint {quoted(name)} (configured: {', '.join(configured) or 'none'})"


def label_map(labels: dict[Any, Any]) -> dict[str, str]:
    """Checked labels (see :func:`labels_problem`) as stored: every value a string, booleans
    spelt as in JSON and YAML (``true``, not Python's ``True``)."""
    return {
        str(k): ("true" if v else "false") if isinstance(v, bool) else str(v)
        for k, v in labels.items()
    }


@dataclass(frozen=True)
class WatchSpec:
    """A request to watch one job. Built from what a user or a program gave by
    :mod:`notifier.watchspec` (every intake path), which checks it first."""

    job_id: str
    labels: dict[str, str] = field(default_factory=dict)
    #: Endpoint names to notify; None means every endpoint whose ``events`` match.
    endpoints: tuple[str, ...] | None = None
    #: The job's kind (:data:`notifier.kinds.KINDS`): the same id under two kinds is two
    #: watches.
    kind: str = kinds.DEFAULT_KIND
    #: The vendor account the job is on: the same id and kind on two accounts is two watches.
    account: str = DEFAULT_ACCOUNT


@dataclass(frozen=True)
class JobDetail:
    """One job as the vendor reported it, in neutral terms: its kind's table entry
    (:mod:`notifier.kinds`) turned the vendor's status into ``phase`` at the vendor client.

    ``status`` is the vendor's own value, kept to show and to store, never interpreted
    outside the kind table. The lip-sync fields (``video_url`` …) are what its events carry;
    other kinds' events carry ``data`` (the answer as sent)."""

    id: str
    status: int | None
    progress: int
    msg: str
    video_url: str = ""
    preview_url: str = ""
    duration: int = 0
    create_time: int = 0
    #: The ``data`` object as the vendor sent it (kept for the gateway, which answers in the
    #: vendor's own words); not part of equality or the hash, and None when not parsed.
    raw: Mapping[str, Any] | None = field(default=None, compare=False)
    #: The job's kind (:data:`notifier.kinds.KINDS`).
    kind: str = kinds.DEFAULT_KIND
    #: None: read from the kind's table with ``status`` (a detail made by hand, e.g. a test's).
    phase: Phase = None  # type: ignore[assignment]
    #: What an event's ``data`` carries of this answer; None: the lip-sync fields.
    data: Mapping[str, Any] | None = field(default=None, compare=False)
    #: The vendor account whose client fetched it (its watch, and its event, are that
    #: account's).
    account: str = DEFAULT_ACCOUNT

    def __post_init__(self) -> None:
        if self.phase is None:
            phase = kinds.get(self.kind).phase({**(self.raw or {}), "status": self.status})
            object.__setattr__(self, "phase", phase)

    @property
    def terminal(self) -> bool:
        return self.phase.terminal

    def as_dict(self) -> dict[str, Any]:
        if self.data is not None:
            return {**self.data, "id": self.id}
        return {
            "id": self.id,
            "status": self.status,
            "progress": self.progress,
            "msg": self.msg,
            "video_url": self.video_url,
            "preview_url": self.preview_url,
            "duration": self.duration,
            "create_time": self.create_time,
        }


@dataclass(frozen=True)
class JobMemory:
    """What the policy remembers of a job between polls (stored with the watch)."""

    added_at: float
    create_time: int | None = None
    last_poll_at: float | None = None
    last_progress: int | None = None
    first_running_at: float | None = None
    first_running_progress: int | None = None
    last_queued_at: float | None = None
    misses: int = 0
    predicted_at: float | None = None


@dataclass(frozen=True)
class Event:
    """A terminal event as stored; ``body`` is the exact JSON sent to every endpoint."""

    event_id: str
    job_id: str
    type: str
    created_at: float
    body: bytes
    #: When the job was last seen unfinished (None: terminal at its first poll).
    last_seen_running_at: float | None = None
    #: The vendor account it concerns (a job event: its watch's; ``vendor.*``: the account
    #: whose calls fail). None: an event about the daemon itself, of no account (an
    #: endpoint's health, a dead delivery), which every endpoint listing its type may get.
    account: str | None = None

    @property
    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass(frozen=True)
class SendResult:
    """What one delivery attempt came to, as the dispatcher needs to know it."""

    ok: bool
    #: No point retrying (410 Gone, Slack 4xx other than 429, bad URL).
    permanent: bool = False
    #: The receiver's Retry-After, in seconds from now.
    retry_after: float | None = None
    status: int | None = None
    #: Short, secret-free description of what went wrong.
    error: str | None = None
