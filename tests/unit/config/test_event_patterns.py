"""An endpoint's ``events`` may name a whole kind (``video.*``), an outcome across kinds
(``*.failed``) or every job event (``*``): the config keeps what was written, routing gets
the concrete types, and an entry that names nothing is a config error saying what it could
have meant (issue 21, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config.events import expand, matches
from notifier.delivery.operational import OpsFact, route_operational
from notifier.delivery.transition import route
from notifier.kinds import JOB_EVENT_TYPES, KINDS, OUTCOMES
from notifier.models import OPERATIONAL_EVENT_TYPES
from notifier.service.routing import routes, subscriptions
from notifier.service.settings import config_summary
from tests.kit.config_files import BASE, config_error, load_text

LIP_SYNC = ("lip_sync.succeeded", "lip_sync.failed", "lip_sync.expired", "lip_sync.rejected")


def _endpoints(*events: str | None) -> str:
    """One webhook endpoint ``e<i>`` per entry: its ``events`` line as given (None: none)."""
    out = ["endpoints:"]
    for i, line in enumerate(events):
        out += [
            f"  - name: e{i}",
            "    type: webhook",
            f"    url: https://hooks.example.com/{i}",
            "    secret: ${WH}",
        ]
        if line is not None:
            out.append(f"    events: {line}")
    return BASE + "\n".join(out) + "\n"


def test_a_kind_pattern_takes_that_kind_only() -> None:
    assert matches("video.*") == (
        "video.succeeded",
        "video.failed",
        "video.expired",
        "video.rejected",
    )
    assert matches("lip_sync.*") == LIP_SYNC


def test_an_outcome_pattern_takes_that_outcome_of_every_kind() -> None:
    assert matches("*.failed") == tuple(f"{name}.failed" for name in KINDS)
    assert len(KINDS) >= 6 and "video.failed" in matches("*.failed")


def test_every_job_event_but_no_operational_one() -> None:
    assert matches("*") == matches("*.*") == JOB_EVENT_TYPES
    assert set(JOB_EVENT_TYPES) == {f"{k}.{o}" for k in KINDS for o in OUTCOMES}
    assert not set(matches("*")) & set(OPERATIONAL_EVENT_TYPES)
    # Operational events by name or family, as before kinds.
    assert matches("vendor.*") == ("vendor.failing", "vendor.recovered")
    assert matches("delivery.*") == ("delivery.dead",)
    assert matches("endpoint.failing") == ("endpoint.failing",)


def test_expand_keeps_each_type_once_in_order() -> None:
    assert expand(["lip_sync.failed", "*.failed", "vendor.*"]) == (
        "lip_sync.failed",
        *(f"{name}.failed" for name in KINDS if name != "lip_sync"),
        "vendor.failing",
        "vendor.recovered",
    )


def test_the_config_keeps_the_patterns_as_written(tmp_path: Path) -> None:
    config = load_text(tmp_path, _endpoints("['video.*', '*.failed', '*.failed']", None))
    e0, e1 = config.endpoints
    assert e0.events == ["video.*", "*.failed"]
    assert e1.events == ["*"]  # the default: every job event of every kind
    assert [ep["events"] for ep in config_summary(config, None)["endpoints"]] == [
        ["video.*", "*.failed"],
        ["*"],
    ]
    assert dict(subscriptions(config)) == {
        "e0": expand(["video.*", "*.failed"]),
        "e1": JOB_EVENT_TYPES,
    }


def test_a_video_endpoint_gets_video_events_and_no_lip_sync_ones(tmp_path: Path) -> None:
    config = load_text(tmp_path, _endpoints("['video.*']", "['*.failed']", "[lip_sync.failed]"))
    subs = subscriptions(config)
    assert route("video.succeeded", None, subs) == ["e0"]
    assert route("video.failed", None, subs) == ["e0", "e1"]
    assert route("video.expired", None, subs) == ["e0"]
    assert route("lip_sync.succeeded", None, subs) == []
    assert route("lip_sync.failed", None, subs) == ["e1", "e2"]
    for name in KINDS:
        assert "e1" in route(f"{name}.failed", None, subs)
        assert "e1" not in route(f"{name}.succeeded", None, subs)
    # A watch naming its endpoints still gets only those that take the type.
    assert route("video.failed", ["e1", "e2"], subs) == ["e1"]


def test_a_wildcard_brings_no_operational_event(tmp_path: Path) -> None:
    config = load_text(tmp_path, _endpoints("['*']", "['*.*']", "['vendor.*']", None))
    fact = OpsFact(type="vendor.failing", subject=None, data={})
    assert route_operational(fact, routes(config)) == ["e2"]


def test_old_configs_route_exactly_as_before(tmp_path: Path) -> None:
    """Configs of before kinds: the default, exact job events, operational events."""
    config = load_text(
        tmp_path,
        _endpoints(
            None,
            "[lip_sync.failed, lip_sync.rejected]",
            "[endpoint.failing, delivery.dead, vendor.failing, vendor.recovered]",
            "[lip_sync.succeeded, endpoint.recovered]",
        ),
    )
    subs = subscriptions(config)
    before = {
        "lip_sync.succeeded": ["e0", "e3"],
        "lip_sync.failed": ["e0", "e1"],
        "lip_sync.expired": ["e0"],
        "lip_sync.rejected": ["e0", "e1"],
        "endpoint.failing": ["e2"],
        "endpoint.recovered": ["e3"],
        "delivery.dead": ["e2"],
        "vendor.failing": ["e2"],
        "vendor.recovered": ["e2"],
    }
    assert {t: route(t, None, subs) for t in before} == before
    assert route("lip_sync.failed", ["e1", "gone"], subs) == ["e1", "gone"]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("vidoe.*", "(kinds: lip_sync, video, customised_person, voice_clone, tts, ai_creation"),
        ("vidoe.*", "did you mean video.*?"),
        ("*.done", "(outcomes: succeeded, failed, expired, rejected, or * for all of them)"),
        ("video.done", "(outcomes: succeeded, failed, expired, rejected"),
        ("video.fialed", "did you mean video.failed?"),
        ("vendor.down", "(vendor events: vendor.failing, vendor.recovered, or vendor.*)"),
        ("avatar.succeeded", "kinds: lip_sync, video,"),
        ("*.recovered", "(outcomes: "),
        ("**", "<kind>.<outcome>, <kind>.*, *.<outcome> or *"),
        ("failed", "operational events: endpoint.failing"),
    ],
)
def test_an_entry_that_names_nothing_says_what_it_could_mean(
    tmp_path: Path, entry: str, says: str
) -> None:
    message = config_error(tmp_path, _endpoints(None, f"[lip_sync.failed, '{entry}']"))
    assert f"endpoints[1].events[1]: endpoint 'e1': unknown event {entry!r} (" in message
    assert says in message
    assert message.count("\n") == 0  # only the bad entry is blamed


def test_an_entry_that_is_not_a_string(tmp_path: Path) -> None:
    message = config_error(tmp_path, _endpoints("[5]"))
    assert message.endswith(
        "endpoints[0].events[0]: endpoint 'e0': must be an event name or pattern "
        "(a string), got int"
    )


@pytest.mark.parametrize("line", ["[*.failed]", "[lip_sync.failed, *]", "*"])
def test_an_unquoted_star_is_a_yaml_alias_and_the_error_says_to_quote_it(
    tmp_path: Path, line: str
) -> None:
    message = config_error(tmp_path, _endpoints(line))
    assert "YAML syntax error at line 9" in message  # the events line
    assert message.endswith('a value that starts with * must be quoted, e.g. "*.failed"')
