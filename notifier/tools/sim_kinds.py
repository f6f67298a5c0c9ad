"""The simulator's wire truth per job kind: paths, id parameter, status values, list shape,
progress or none, callback, and the fields of a detail answer.

The simulator plays the vendor, so this table is its own and never imports the daemon's kind
table (``notifier.kinds``): a mistake there must show up in tests against this one, not be
shared by both. Facts are second-hand (the vendor's SDK and plug-ins, see
docs/try-it-locally.md); what could not be confirmed is marked "unverified" below.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

CDN_BASE = "https://cdn.example.invalid"

#: The simulator's own names for where a job is (the vendor has none: each kind its codes).
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
TERMINAL = frozenset({SUCCEEDED, FAILED})

Status = int | str


@dataclass(frozen=True)
class Moment:
    """What a detail answer is made from: one job at one instant of its timeline."""

    id: str
    phase: str
    status: Status
    #: 0-100; ignored by kinds without progress.
    progress: int
    #: The failure message ("" unless failed).
    msg: str
    create_time: int


def _seed(job_id: str, low: int, span: int) -> int:
    """A stable, plausible number in ``low..low+span`` derived from the id."""
    digest = hashlib.sha256(job_id.encode()).digest()
    return low + int.from_bytes(digest[:4], "big") % (span + 1)


def _lip_sync(m: Moment) -> dict[str, Any]:
    done = m.phase == SUCCEEDED
    return {
        "id": m.id,
        "status": m.status,
        "progress": m.progress,
        "msg": "success" if done else m.msg,
        "video_url": f"{CDN_BASE}/videos/{m.id}.mp4" if done else "",
        "preview_url": f"{CDN_BASE}/videos/{m.id}.jpg" if done else "",
        "duration": _seed(m.id, 5_000, 55_000) if done else 0,  # milliseconds
        "create_time": m.create_time,
    }


def _video(m: Moment) -> dict[str, Any]:
    done = m.phase == SUCCEEDED
    return {
        "id": m.id,
        "status": m.status,
        "progress": m.progress,
        "msg": "success" if done else m.msg,
        "video_url": f"{CDN_BASE}/video/{m.id}.mp4" if done else "",
        "preview_url": f"{CDN_BASE}/video/{m.id}.jpg" if done else "",
        "subtitle_data_url": f"{CDN_BASE}/video/{m.id}.json" if done else "",
        "duration": _seed(m.id, 5, 55) if done else 0,  # seconds, unlike lip-sync
        "audio_urls": [f"{CDN_BASE}/video/{m.id}.wav"] if done else [],
        "create_time": m.create_time,
    }


def _person(m: Moment) -> dict[str, Any]:
    done = m.phase == SUCCEEDED
    return {
        "id": m.id,
        "name": f"avatar-{m.id[:8]}",
        "status": m.status,
        "progress": m.progress,
        "pic_url": f"{CDN_BASE}/person/{m.id}.png" if done else "",
        "preview_url": f"{CDN_BASE}/person/{m.id}.mp4" if done else "",
        "width": 1080 if done else 0,
        "height": 1920 if done else 0,
        "audio_man_id": f"C-{m.id[:16]}" if done else "",
        "err_reason": m.msg,
        "type": "person",
        "is_open": 1,
        "reason": "",
        "create_time": m.create_time,
    }


def _voice(m: Moment) -> dict[str, Any]:
    done = m.status == 2  # a voice that expired or was deleted has no sample any more
    return {
        "id": m.id,
        "name": f"voice-{m.id[:8]}",
        "type": "cicada3.0-turbo",
        "status": m.status,
        "progress": m.progress,
        "audio_path": f"{CDN_BASE}/audio/{m.id}.wav" if done else "",
        "err_msg": m.msg,
        "create_time": m.create_time,
    }


def _tts(m: Moment) -> dict[str, Any]:
    done = m.phase == SUCCEEDED
    seconds = float(_seed(m.id, 2, 28))
    path = f"tts/{m.id}.mp3"
    return {
        "id": m.id,
        "type": "tts",
        "status": m.status,
        "full": {"url": f"{CDN_BASE}/{path}", "path": path, "duration": seconds} if done else {},
        "subtitles": [{"key": "0", "start_time": 0.0, "end_time": seconds, "subtitle": "..."}]
        if done
        else [],
        "errMsg": m.msg,
        "errReason": "text rejected by content check" if m.msg else "",
    }


#: The ``type`` of every simulated AI creation: an image (4 would be a video).
AI_CREATION_TYPE = 3


def _ai_creation(m: Moment) -> dict[str, Any]:
    done = m.phase == SUCCEEDED
    return {
        "unique_id": m.id,
        "type": AI_CREATION_TYPE,
        "model_code": "doubao-seedream-4.5",
        "progress_desc": m.status,
        "output_url": [f"{CDN_BASE}/ai/{m.id}.png"] if done else [],
        "err_msg": m.msg,
        "create_time": m.create_time,
    }


@dataclass(frozen=True, kw_only=True)
class SimKind:
    """One job kind as the vendor serves it."""

    name: str
    create_path: str
    #: Where the create answer puts the new id: ``None`` for ``data`` itself, else a key of it.
    create_id: str | None = None
    detail_method: Literal["GET", "POST"] = "GET"
    detail_path: str
    #: The query parameter (GET) or JSON body key (POST) carrying the id.
    id_param: str = "id"
    #: The status values: one while queued, the ones a run goes through (in order, each an
    #: equal share of the run), the success, the failures (the first is the default one).
    queued: Status
    running: tuple[Status, ...]
    success: Status
    failures: tuple[Status, ...]
    #: Statuses a success may later turn into (a voice that expires or is deleted).
    later: tuple[Status, ...] = ()
    progress: bool = True
    #: What the vendor posts to a create's ``callback``: the detail envelope, the bare detail
    #: ``data``, or nothing (the kind's create takes no callback).
    callback: Literal["envelope", "bare"] | None = None
    render: Callable[[Moment], dict[str, Any]]
    #: The list call: its path, ``page`` (the account's jobs, newest first) or ``ids`` (the
    #: jobs asked for), the answer's keys, the largest page.
    list_path: str | None = None
    list_by: Literal["page", "ids"] = "page"
    list_items: str = "list"
    list_page_info: str = "page_info"
    list_max_page_size: int = 100
    default_msg: str = "generation failed"
    #: The ``data`` key of the status.
    status_field: str = "status"

    def outcome(self, value: object) -> tuple[str, Status]:
        """``(phase, status)`` a job given ``outcome: value`` ends in: the words
        ``succeeded``/``failed`` work for every kind, a status value where it is unambiguous."""
        if value is None or value == SUCCEEDED:
            return SUCCEEDED, self.success
        if value == FAILED:
            return FAILED, self.failures[0]
        ambiguous = self.success in self.failures
        if not ambiguous and not isinstance(value, bool):
            if value == self.success:
                return SUCCEEDED, self.success
            for status in self.failures:
                if value == status:
                    return FAILED, status
        allowed = "'succeeded' or 'failed'"
        if not ambiguous:
            allowed = (
                f"'succeeded', 'failed', {self.success!r} (success) "
                f"or one of {list(self.failures)} (failure)"
            )
        raise ValueError(f"outcome of a {self.name} job must be {allowed}, got {value!r}")

    def running_status(self, fraction: float) -> Status:
        index = min(len(self.running) - 1, max(0, int(fraction * len(self.running))))
        return self.running[index]


LIP_SYNC = SimKind(
    name="lip_sync",
    create_path="/open/v1/video_lip_sync/create",
    detail_path="/open/v1/video_lip_sync/detail",
    queued=0,
    running=(10,),
    success=20,
    failures=(30,),
    callback="envelope",
    render=_lip_sync,
    list_path="/open/v1/video_lip_sync/list",
    default_msg="audio decode failed",
)

VIDEO = SimKind(
    name="video",
    create_path="/open/v1/create_video",
    detail_path="/open/v1/video",
    # No queued status is documented: a video is "10 generating" from the start.
    queued=10,
    running=(10,),
    success=30,
    # 4X a parameter error, 5X a service error.
    failures=tuple(range(40, 60)),
    callback="bare",
    render=_video,
    list_path="/open/v1/video_list",
    list_items="List",
    list_page_info="PageInfo",
    default_msg="audio and person do not match",
)

CUSTOMISED_PERSON = SimKind(
    name="customised_person",
    create_path="/open/v1/create_customised_person",
    detail_path="/open/v1/customised_person",
    queued=0,
    running=(1,),
    success=2,
    failures=(4, 5),
    callback="bare",
    render=_person,
    list_path="/open/v1/list_customised_person",
    default_msg="no face found in the training video",
)

VOICE_CLONE = SimKind(
    name="voice_clone",
    create_path="/open/v1/create_customised_audio",
    detail_path="/open/v1/customised_audio",
    queued=0,
    running=(1,),
    success=2,
    failures=(4, 3, 99),
    later=(3, 99),
    render=_voice,
    list_path="/open/v1/list_customised_audio",
    default_msg="reference audio too noisy",
)

TTS = SimKind(
    name="tts",
    create_path="/open/v1/create_audio_task",
    create_id="task_id",
    detail_method="POST",
    detail_path="/open/v1/audio_task_state",
    id_param="task_id",
    # 1 while it runs, 9 when done either way: the error message tells the outcome.
    queued=1,
    running=(1,),
    success=9,
    failures=(9,),
    progress=False,
    render=_tts,
    default_msg="synthesis failed",
)

AI_CREATION = SimKind(
    name="ai_creation",
    create_path="/open/v1/ai_creation/task/submit",
    detail_path="/open/v1/ai_creation/task",
    id_param="unique_id",
    queued="Queued",
    running=("Ready", "Generating"),
    success="Success",
    failures=("Error", "Fail"),
    progress=False,
    callback="bare",  # unverified: the same as video's
    render=_ai_creation,
    list_path="/open/v1/ai_creation/task/page",
    list_by="ids",
    list_max_page_size=50,
    default_msg="content check failed",
    status_field="progress_desc",
)

SIM_KINDS: Mapping[str, SimKind] = {
    k.name: k for k in (LIP_SYNC, VIDEO, CUSTOMISED_PERSON, VOICE_CLONE, TTS, AI_CREATION)
}
DEFAULT_KIND = LIP_SYNC.name


def sim_kind(name: object) -> SimKind:
    """The kind named ``name``; ValueError lists the kinds the simulator serves."""
    if isinstance(name, str) and name in SIM_KINDS:
        return SIM_KINDS[name]
    raise ValueError(f"kind must be one of {list(SIM_KINDS)}, got {name!r}")
