"""Slack messages for operational events: about an endpoint or the vendor, not a job."""

from __future__ import annotations

from notifier.delivery.senders import build_slack_message


def test_endpoint_failing_names_the_endpoint_and_error() -> None:
    message = build_slack_message(
        {
            "type": "endpoint.failing",
            "timestamp": "2026-11-27T16:05:00Z",
            "data": {
                "endpoint": "ops",
                "consecutive_failures": 5,
                "since": "2026-11-27T16:00:00Z",
                "last_error": "<!channel> HTTP 503",
            },
        }
    )
    assert message["blocks"][0]["text"]["text"] == "🚨 Notification endpoint failing"
    assert message["text"] == "🚨 Notification endpoint failing: ops — &lt;!channel&gt; HTTP 503"
    fields = str(message["blocks"][1]["fields"])
    assert "Consecutive failures" in fields and "*Endpoint*\\nops" in fields
    assert "Job" not in fields  # no job-shaped placeholder


def test_vendor_recovered_without_fields_has_no_empty_section() -> None:
    message = build_slack_message({"type": "vendor.recovered", "data": {}})
    assert [b["type"] for b in message["blocks"]] == ["header", "context"]
    assert message["text"] == "✅ Chanjing API recovered"
