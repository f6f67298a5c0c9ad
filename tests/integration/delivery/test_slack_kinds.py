"""A video synthesis job's events reach a real Slack-shaped receiver worded from the event
type (issue 21, item 8): its success, status 30, is posted as "ready" with the video, its
failure, status 40, as "failed" with the vendor's reason."""

from __future__ import annotations

import json
from typing import Any

import httpx

from notifier.delivery.senders import SlackSender
from notifier.delivery.transition import build_event
from notifier.kinds import VIDEO
from notifier.models import Event
from notifier.polling.vendor import parse_detail
from tests.kit import SLACK_PATH, ReceiverServer

VIDEO_URL = "https://cdn.example.com/v/vid-1.mp4"


def video_event(answer: dict[str, Any]) -> Event:
    """The event the daemon makes of this detail answer of a video synthesis job."""
    detail = parse_detail("vid-1", answer, VIDEO)
    return build_event(detail, {"customer": "acme"}, 1_800_000_000.0)


async def test_a_video_success_and_failure_reach_slack_as_what_they_are(
    receiver: ReceiverServer,
) -> None:
    succeeded = video_event(
        {"id": "vid-1", "status": 30, "progress": 100, "video_url": VIDEO_URL, "duration": 12}
    )
    failed = video_event({"id": "vid-1", "status": 40, "progress": 10, "msg": "bad audio url"})
    assert (succeeded.type, failed.type) == ("video.succeeded", "video.failed")
    async with httpx.AsyncClient() as client:
        sender = SlackSender(client, receiver.url + SLACK_PATH, timeout=5, min_spacing=0)
        for event in (succeeded, failed):
            result = await sender.send(event)
            assert result.ok, result.error
    ready, broken = (r.payload for r in receiver.receiver.accepted(SLACK_PATH))
    assert ready["blocks"][0]["text"]["text"] == "✅ Digital-human video ready"
    assert ready["text"] == "✅ Digital-human video ready: job vid-1"
    (actions,) = [b for b in ready["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == VIDEO_URL
    assert "failed" not in json.dumps(ready)
    assert broken["blocks"][0]["text"]["text"] == "❌ Digital-human video job failed"
    assert broken["text"] == "❌ Digital-human video job failed: job vid-1 — bad audio url"
    (section,) = [b for b in broken["blocks"] if b["type"] == "section"]
    assert {"type": "mrkdwn", "text": "*Status*\nfailed (40)"} in section["fields"]
