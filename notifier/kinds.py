"""The vendor's job kinds: one table, the only place outside the vendor client that knows
what a kind's status values mean.

Each kind has its own paths and, worse, its own status codes (for video synthesis 30 is a
success, for lip-sync a failure). The vendor client (``notifier.polling.vendor``) reads a
kind's answers with its entry here and hands on a neutral :class:`Phase`; every other module
works with phases and the kind's name. Adding a kind is one entry in :data:`KINDS` plus its
timeline in the simulator (``notifier/tools/sim_kinds.py``).

Facts come from the vendor's public SDK and plug-ins, not its own docs: see docs/kinds.md
for what is unverified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Phase(StrEnum):
    """Where a job is, whatever its kind calls it."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


#: The outcomes a job event can have (``<kind>.<outcome>``): the two terminal phases, a
#: watch given up unfinished, an id the vendor does not know.
OUTCOMES = ("succeeded", "failed", "expired", "rejected")


@dataclass(frozen=True)
class Poll:
    """The call that reads one job: a GET with the id as a query parameter, or a POST with
    it in a JSON body (TTS)."""

    method: Literal["GET", "POST"]
    path: str
    id_param: str


@dataclass(frozen=True)
class Listing:
    """The call that reads many jobs at once (a list sweep).

    ``by="page"`` pages through the account's recent jobs, newest first; ``by="ids"`` asks for
    given ids (AI creation), so the sweep sends the ids it watches."""

    path: str
    by: Literal["page", "ids"]
    #: Keys of the answer's ``data``: the items, and the page information (video's list
    #: answers with capitalised keys).
    items: str = "list"
    page_info: str = "page_info"
    #: The page information's key for the page count.
    pages: str = "total_page"
    #: The request's key for the ids (``by="ids"``).
    ids_param: str = "unique_ids"
    #: An item's key for its job id.
    id_field: str = "id"
    #: The largest page the vendor serves (a larger one is refused with 40000).
    max_page_size: int = 100
    #: ``by="ids"``: a request key some sources send with one of ``types`` (AI creation's
    #: ``type``: 3 images, 4 videos). Not sent until the vendor refuses a list without it;
    #: then each type is asked for in turn (docs/kinds.md, Unverified).
    types_param: str | None = None
    types: tuple[int, ...] = ()


def _codes(table: Mapping[int, Phase], ranges: tuple[tuple[int, int, Phase], ...] = ()) -> Any:
    """A phase rule from a status table and inclusive ranges."""

    def phase(status: object, _data: Mapping[str, Any]) -> Phase | None:
        if isinstance(status, bool) or not isinstance(status, int):
            return None
        if status in table:
            return table[status]
        return next((p for low, high, p in ranges if low <= status <= high), None)

    return phase


def _tts_phase(status: object, data: Mapping[str, Any]) -> Phase | None:
    """TTS says "done" (9) for both outcomes: an error message makes it a failure."""
    if isinstance(status, bool) or not isinstance(status, int):
        return None
    if status == 9:
        return Phase.FAILED if str(data.get("errMsg") or "").strip() else Phase.SUCCEEDED
    return {0: Phase.QUEUED, 1: Phase.RUNNING}.get(status)


def _words(table: Mapping[str, Phase]) -> Any:
    """A phase rule from status words, compared without case."""
    folded = {k.casefold(): v for k, v in table.items()}

    def phase(status: object, _data: Mapping[str, Any]) -> Phase | None:
        return folded.get(status.strip().casefold()) if isinstance(status, str) else None

    return phase


#: (status value, the whole ``data``) -> phase, or None for a value the kind does not have.
PhaseRule = Callable[[object, Mapping[str, Any]], Phase | None]


@dataclass(frozen=True)
class Kind:
    name: str
    #: For people: Slack's header, ``watch list``.
    title: str
    poll: Poll
    listing: Listing | None
    #: The create call (the gateway watches it): its path, where its answer puts the new
    #: job's id (``data`` itself or a key of it), and whether it takes a ``callback`` URL.
    create_path: str | None
    create_id: str | None
    callback: bool
    #: The ``data`` key of the status, and what its values mean.
    status_field: str
    phase_rule: PhaseRule = field(repr=False)
    #: The ``data`` key of a 0-100 progress, or None when the kind reports none (the polling
    #: policy then guesses from ``typical_run``).
    progress_field: str | None
    #: ``data`` keys of the vendor's message (first non-empty wins): why it failed.
    message_fields: tuple[str, ...]
    #: ``data`` keys (dots go into objects, ``[0]`` the first of a list) of what to link to
    #: a person when it succeeded, first non-empty wins, and what that link is.
    link_fields: tuple[str, ...]
    link_title: str
    #: Seconds a job typically runs, for kinds without progress.
    typical_run: float = 60.0
    #: The fields an event's ``data`` carries, as numbers and text the vendor client checked
    #: (lip-sync: today's payload); empty: the vendor's ``data`` object as it came.
    payload_fields: tuple[str, ...] = ()
    #: The status an event of a job never seen says it had (lip-sync's events always said 0).
    unseen_status: int | None = None
    #: The status is a number (read as one, whatever JSON type it came in); False: words.
    numeric_status: bool = True

    def event(self, outcome: str) -> str:
        """The event type for one of :data:`OUTCOMES`: ``<kind>.<outcome>``."""
        return f"{self.name}.{outcome}"

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(self.event(o) for o in OUTCOMES)

    def phase(self, data: Mapping[str, Any]) -> Phase:
        """The phase a detail ``data`` object reports; ValueError names a status this kind
        does not have (the poll is then an error, tried again, never a guess)."""
        status = data.get(self.status_field)
        phase = self.phase_rule(status, data)
        if phase is None:
            shown = status if isinstance(status, int) else repr(str(status)[:40])
            raise ValueError(f"unknown job status {shown} for a {self.name} job")
        return phase

    def message(self, data: Mapping[str, Any]) -> str:
        for key in self.message_fields:
            value = data.get(key)
            if value not in (None, ""):
                return str(value)
        return ""

    def link(self, data: Mapping[str, Any]) -> str:
        """The URL a person wants when the job succeeded ("" when the answer has none)."""
        for path in self.link_fields:
            value = _dig(data, path)
            if isinstance(value, str) and value:
                return value
        return ""


def _dig(data: object, path: str) -> object:
    for part in path.split("."):
        index = part.endswith("[0]")
        key = part.removesuffix("[0]")
        data = data.get(key) if isinstance(data, Mapping) else None
        if index:
            data = data[0] if isinstance(data, list) and data else None
    return data


_RUNNING_QUEUED = {0: Phase.QUEUED, 1: Phase.RUNNING}

LIP_SYNC = Kind(
    name="lip_sync",
    title="Lip-sync video",
    poll=Poll("GET", "/open/v1/video_lip_sync/detail", "id"),
    listing=Listing("/open/v1/video_lip_sync/list", "page"),
    create_path="/open/v1/video_lip_sync/create",
    create_id="data",
    callback=True,
    status_field="status",
    phase_rule=_codes({0: Phase.QUEUED, 10: Phase.RUNNING, 20: Phase.SUCCEEDED, 30: Phase.FAILED}),
    progress_field="progress",
    message_fields=("msg",),
    link_fields=("video_url",),
    link_title="video",
    unseen_status=0,
    payload_fields=(
        "id",
        "status",
        "progress",
        "msg",
        "video_url",
        "preview_url",
        "duration",
        "create_time",
    ),
)

VIDEO = Kind(
    name="video",
    title="Digital-human video",
    poll=Poll("GET", "/open/v1/video", "id"),
    listing=Listing("/open/v1/video_list", "page", items="List", page_info="PageInfo"),
    create_path="/open/v1/create_video",
    create_id="data",
    callback=True,
    status_field="status",
    # 10 generating, 30 done; 4X a parameter error, 5X a service error.
    phase_rule=_codes(
        {0: Phase.QUEUED, 10: Phase.RUNNING, 30: Phase.SUCCEEDED},
        ((1, 29, Phase.RUNNING), (40, 99, Phase.FAILED)),
    ),
    progress_field="progress",
    message_fields=("msg", "err_msg"),
    link_fields=("video_url",),
    link_title="video",
)

CUSTOMISED_PERSON = Kind(
    name="customised_person",
    title="Custom avatar",
    poll=Poll("GET", "/open/v1/customised_person", "id"),
    listing=Listing("/open/v1/list_customised_person", "page"),
    create_path="/open/v1/create_customised_person",
    create_id="data",
    callback=True,
    status_field="status",
    phase_rule=_codes({**_RUNNING_QUEUED, 2: Phase.SUCCEEDED, 4: Phase.FAILED, 5: Phase.FAILED}),
    progress_field="progress",
    message_fields=("err_reason", "msg"),
    link_fields=("preview_url", "pic_url"),
    link_title="avatar preview",
    typical_run=3600.0,
)

VOICE_CLONE = Kind(
    name="voice_clone",
    title="Voice clone",
    poll=Poll("GET", "/open/v1/customised_audio", "id"),
    listing=Listing("/open/v1/list_customised_audio", "page"),
    create_path="/open/v1/create_customised_audio",
    create_id="data",
    callback=False,
    status_field="status",
    # 3 expired and 99 deleted end the job as much as 4 failed does.
    phase_rule=_codes(
        {**_RUNNING_QUEUED, 2: Phase.SUCCEEDED, 3: Phase.FAILED, 4: Phase.FAILED, 99: Phase.FAILED}
    ),
    progress_field="progress",
    message_fields=("err_msg", "msg"),
    link_fields=("audio_path",),
    link_title="voice sample",
    typical_run=300.0,
)

TTS = Kind(
    name="tts",
    title="Speech",
    poll=Poll("POST", "/open/v1/audio_task_state", "task_id"),
    listing=None,
    create_path="/open/v1/create_audio_task",
    create_id="task_id",
    callback=False,
    status_field="status",
    phase_rule=_tts_phase,
    progress_field=None,
    message_fields=("errMsg", "errReason"),
    link_fields=("full.url",),
    link_title="audio",
    typical_run=10.0,
)

AI_CREATION = Kind(
    name="ai_creation",
    title="AI creation",
    poll=Poll("GET", "/open/v1/ai_creation/task", "unique_id"),
    listing=Listing(
        "/open/v1/ai_creation/task/page",
        "ids",
        id_field="unique_id",
        max_page_size=50,
        types_param="type",
        types=(3, 4),
    ),
    create_path="/open/v1/ai_creation/task/submit",
    create_id="data",
    callback=True,
    status_field="progress_desc",
    numeric_status=False,
    phase_rule=_words(
        {
            "Queued": Phase.QUEUED,
            "Ready": Phase.RUNNING,
            "Generating": Phase.RUNNING,
            "Success": Phase.SUCCEEDED,
            "Error": Phase.FAILED,
            "Fail": Phase.FAILED,
        }
    ),
    progress_field=None,
    message_fields=("err_msg", "msg"),
    link_fields=("output_url[0]",),
    link_title="output",
    typical_run=120.0,
)

KINDS: Mapping[str, Kind] = {
    k.name: k for k in (LIP_SYNC, VIDEO, CUSTOMISED_PERSON, VOICE_CLONE, TTS, AI_CREATION)
}
DEFAULT_KIND = LIP_SYNC.name
#: Every job event type of every kind.
JOB_EVENT_TYPES: tuple[str, ...] = tuple(e for k in KINDS.values() for e in k.events)
#: Kinds discovery (``watch.discover``) can cover: their list pages through the account's
#: jobs, newest first. AI creation's is asked by ids, so it shows only jobs already watched.
DISCOVERABLE: tuple[str, ...] = tuple(
    k.name for k in KINDS.values() if k.listing is not None and k.listing.by == "page"
)


def kind_problem(name: object) -> str | None:
    """Why ``name`` is not a kind, or None: the one wording for every intake path."""
    if isinstance(name, str) and name in KINDS:
        return None
    shown = repr(name) if isinstance(name, str) else type(name).__name__
    return f"unknown kind {shown[:60]} (kinds: {', '.join(KINDS)})"


def discovery_problem(name: object) -> str | None:
    """Why discovery cannot cover ``name``, or None."""
    if problem := kind_problem(name):
        return problem
    if name in DISCOVERABLE:
        return None
    why = "it has no list call" if KINDS[str(name)].listing is None else "its list is asked by ids"
    return f"kind {name!r} cannot be discovered: {why} (discoverable: {', '.join(DISCOVERABLE)})"


def get(name: str) -> Kind:
    """The kind named ``name`` (a stored watch's); KeyError for a name no entry has."""
    return KINDS[name]
