"""Slack messages per job kind (issue 21, item 8): the header and the link come from the
event type's kind and outcome, never from the vendor's status code (for video synthesis 30
is a success, for lip-sync a failure). The events are made as the daemon makes them: the
vendor client reads a detail answer, ``build_event`` makes the body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from notifier.delivery.senders import build_slack_message
from notifier.delivery.transition import build_event
from notifier.kinds import KINDS
from notifier.polling.vendor import parse_detail

NOW = 1_800_000_000.0
CDN = "https://cdn.example.com"

#: Per kind: a detail answer of a success and of a failure, as the vendor sends them.
ANSWERS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "video": (
        {
            "id": "v1",
            "status": 30,
            "progress": 100,
            "msg": "",
            "video_url": f"{CDN}/v1.mp4",
            "preview_url": f"{CDN}/v1.jpg",
            "subtitle_data_url": f"{CDN}/v1.json",
            "duration": 12,
            "create_time": 1738636800,
        },
        {"id": "v1", "status": 40, "progress": 20, "msg": "parameter error: bad person id"},
    ),
    "customised_person": (
        {
            "id": "p1",
            "status": 2,
            "progress": 100,
            "pic_url": f"{CDN}/p1.png",
            "preview_url": f"{CDN}/p1-preview.mp4",
        },
        {"id": "p1", "status": 4, "progress": 0, "err_reason": "no face found in the video"},
    ),
    "voice_clone": (
        {"id": "a1", "status": 2, "progress": 100, "audio_path": f"{CDN}/a1.wav"},
        {"id": "a1", "status": 4, "progress": 0, "err_msg": "audio too noisy"},
    ),
    "tts": (
        {
            "status": 9,
            "errMsg": "",
            "full": {"url": f"{CDN}/t1.mp3", "path": "t1.mp3", "duration": 3.2},
            "subtitles": [],
        },
        {"status": 9, "errMsg": "text too long"},
    ),
    "ai_creation": (
        {
            "unique_id": "c1",
            "progress_desc": "Success",
            "output_url": [f"{CDN}/c1-0.png", f"{CDN}/c1-1.png"],
        },
        {"unique_id": "c1", "progress_desc": "Fail", "err_msg": "content check failed"},
    ),
}
#: What a person follows when it succeeded, and the button's words.
LINKS = {
    "video": (f"{CDN}/v1.mp4", "▶ Open video"),
    "customised_person": (f"{CDN}/p1-preview.mp4", "▶ Open avatar preview"),
    "voice_clone": (f"{CDN}/a1.wav", "▶ Open voice sample"),
    "tts": (f"{CDN}/t1.mp3", "▶ Open audio"),
    "ai_creation": (f"{CDN}/c1-0.png", "▶ Open output"),
}
REASONS = {
    "video": "parameter error: bad person id",
    "customised_person": "no face found in the video",
    "voice_clone": "audio too noisy",
    "tts": "text too long",
    "ai_creation": "content check failed",
}


def event_payload(kind: str, answer: dict[str, Any], **how: Any) -> dict[str, Any]:
    detail = parse_detail(f"{kind}-job", answer, KINDS[kind])
    event = build_event(detail, {"team": "ops"}, NOW, **how)
    payload: dict[str, Any] = json.loads(event.body)
    return payload


def slack(kind: str, answer: dict[str, Any], **how: Any) -> tuple[str, dict[str, Any]]:
    """The event's type and the Slack message made of it."""
    payload = event_payload(kind, answer, **how)
    return payload["type"], build_slack_message(payload)


def _header(message: dict[str, Any]) -> str:
    (header,) = _blocks(message, "header")
    text: str = header["text"]["text"]
    return text


def _blocks(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in message["blocks"] if b["type"] == kind]


def _fields(message: dict[str, Any]) -> str:
    (section,) = _blocks(message, "section")
    return "\n".join(f["text"] for f in section["fields"])


def test_every_kind_but_lip_sync_is_covered_here() -> None:
    assert set(ANSWERS) == set(KINDS) - {"lip_sync"}


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_a_success_says_ready_and_links_the_result(kind: str) -> None:
    event_type, message = slack(kind, ANSWERS[kind][0])
    assert event_type == f"{kind}.succeeded"
    assert _header(message) == f"✅ {KINDS[kind].title} ready"
    assert "failed" not in json.dumps(message)
    assert message["text"].startswith(f"✅ {KINDS[kind].title} ready: job {kind}-job")
    (actions,) = _blocks(message, "actions")
    (button,) = actions["elements"]
    assert (button["url"], button["text"]["text"]) == LINKS[kind]
    fields = _fields(message)
    assert f"`{kind}-job`" in fields and "`team=ops`" in fields
    assert "*Status*\nsucceeded (" in fields
    json.dumps(message)


def test_a_video_success_is_status_30_and_shows_the_video_and_its_preview() -> None:
    _, message = slack("video", ANSWERS["video"][0])
    fields = _fields(message)
    assert "*Status*\nsucceeded (30)" in fields
    # Video's duration comes in seconds, not lip-sync's checked milliseconds: not shown as
    # if it were (12 would read "0.0 s").
    assert "Duration" not in fields
    (image,) = _blocks(message, "image")
    assert image["image_url"] == f"{CDN}/v1.jpg"
    assert image["alt_text"] == "Preview of video job video-job"


def test_an_avatar_shows_its_picture_and_links_its_preview() -> None:
    _, message = slack("customised_person", ANSWERS["customised_person"][0])
    (image,) = _blocks(message, "image")
    assert image["image_url"] == f"{CDN}/p1.png"  # the preview is the link, not the image
    (actions,) = _blocks(message, "actions")
    assert actions["elements"][0]["action_id"] == "open_avatar_preview"


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_a_failure_says_failed_and_why(kind: str) -> None:
    event_type, message = slack(kind, ANSWERS[kind][1])
    assert event_type == f"{kind}.failed"
    assert _header(message) == f"❌ {KINDS[kind].title} job failed"
    assert message["text"].endswith(f" — {REASONS[kind]}")
    fields = _fields(message)
    assert f"*Vendor message*\n{REASONS[kind]}" in fields
    assert "*Status*\nfailed (" in fields
    assert not _blocks(message, "actions") and not _blocks(message, "image")


def test_the_status_is_the_vendors_value_as_it_came() -> None:
    fields = {kind: _fields(slack(kind, ANSWERS[kind][1])[1]) for kind in ANSWERS}
    assert "*Status*\nfailed (40)" in fields["video"]
    assert "*Status*\nfailed (4)" in fields["voice_clone"]
    assert "*Status*\nfailed (9)" in fields["tts"]  # TTS's 9 is "done", either way
    assert "*Status*\nfailed (Fail)" in fields["ai_creation"]


@pytest.mark.parametrize("status", [20, 30, 40, "Fail", None])
def test_the_header_follows_the_event_type_whatever_the_status(status: object) -> None:
    for outcome, header in [("succeeded", "✅ Digital-human video ready"), ("failed", "❌")]:
        payload = {"type": f"video.{outcome}", "data": {"id": "v1", "status": status}}
        assert _header(build_slack_message(payload)).startswith(header)


def test_expired_and_rejected_of_another_kind() -> None:
    _, expired = slack("video", {"id": "v1", "status": 10, "progress": 40}, expired=True)
    assert _header(expired) == "⌛ Digital-human video job given up (still not finished)"
    fields = _fields(expired)
    assert "*Status*\nnot finished (10)" in fields and "*Progress*\n40%" in fields
    # A kind without progress shows none.
    _, tts = slack("tts", {"status": 1, "errMsg": ""}, expired=True)
    assert "Progress" not in _fields(tts)
    _, rejected = slack("tts", {"status": 0, "errMsg": "record not found"}, rejections=3)
    assert _header(rejected) == "🚫 Speech job id unknown to Chanjing (no longer watched)"
    assert "3 times" in _fields(rejected) and "Status" not in _fields(rejected)


def test_a_kind_the_table_does_not_have_still_reads_sensibly() -> None:
    """An event row of another version (a kind since removed or renamed)."""
    message = build_slack_message(
        {
            "type": "hologram.succeeded",
            "timestamp": "2026-12-07T08:00:00Z",
            "data": {"id": "h1", "status": 1, "msg": "done", "labels": {"a": "b"}},
        }
    )
    assert _header(message) == "✅ Chanjing hologram job ready"
    fields = _fields(message)
    assert "`h1`" in fields and "*Status*\nsucceeded (1)" in fields and "done" in fields
    assert not _blocks(message, "actions")
    odd = build_slack_message({"type": "hologram", "data": {"id": "h1"}})
    assert _header(odd) == "🔔 Chanjing job update (hologram)"


def test_lip_sync_messages_are_worded_as_before() -> None:
    answer = {
        "id": "l1",
        "status": 20,
        "progress": 100,
        "msg": "success",
        "video_url": f"{CDN}/l1.mp4",
        "preview_url": f"{CDN}/l1.jpg",
        "duration": 12345,
        "create_time": 1738636800,
    }
    _, message = slack("lip_sync", answer)
    assert message["text"] == "✅ Lip-sync video ready: job lip_sync-job (12.3 s)"
    fields = _fields(message)
    assert "*Status*\nsucceeded (20)" in fields and "*Duration*\n12.3 s" in fields
    (image,) = _blocks(message, "image")
    assert image["alt_text"] == "Preview of lip-sync job lip_sync-job"
    (actions,) = _blocks(message, "actions")
    assert actions["elements"][0] == {
        "type": "button",
        "text": {"type": "plain_text", "text": "▶ Open video"},
        "url": f"{CDN}/l1.mp4",
        "action_id": "open_video",
    }
    _, failed = slack("lip_sync", {**answer, "status": 30, "msg": "x"})
    assert _header(failed) == "❌ Lip-sync job failed"
    _, expired = slack("lip_sync", {**answer, "status": 10}, expired=True)
    assert _header(expired) == "⌛ Lip-sync job given up (still not finished)"
    assert "*Status*\nnot finished (10)" in _fields(expired)
