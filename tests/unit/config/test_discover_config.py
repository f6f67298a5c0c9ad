"""``watch.discover``: off when absent, ``since`` as start or an ISO-8601 time (a clear error
otherwise), labels and endpoint names checked as ``watch add`` checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.config import Config, ConfigError, load_config
from tests.kit.config_files import BASE, ENDPOINTS, ENV, write


def _load(tmp_path: Path, discover: str) -> Config:
    return load_config(write(tmp_path, BASE + ENDPOINTS + "watch:\n  discover:" + discover), ENV)


def _error(tmp_path: Path, discover: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, discover)
    return str(info.value)


def test_off_when_absent(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, BASE), ENV).watch.discover is None


def test_empty_means_every_new_job_since_the_state_began(tmp_path: Path) -> None:
    discover = _load(tmp_path, "\n").watch.discover
    assert discover is not None
    assert (discover.since, discover.labels, discover.endpoints) == ("start", {}, None)
    assert discover.kinds == ["lip_sync"]  # as before kinds: existing configs unchanged


@pytest.mark.parametrize(
    ("given", "kinds"),
    [
        ("video", ["video"]),
        ("[video, lip_sync, video]", ["lip_sync", "video"]),  # table order, once each
        ("'*'", ["lip_sync", "video", "customised_person", "voice_clone"]),
    ],
)
def test_the_kinds_it_covers(tmp_path: Path, given: str, kinds: list[str]) -> None:
    discover = _load(tmp_path, f" {{kinds: {given}}}\n").watch.discover
    assert discover is not None and discover.kinds == kinds


@pytest.mark.parametrize(
    ("given", "wanted"),
    [
        ("[video, tts]", "watch.discover.kinds: kind 'tts' cannot be discovered: it has no list"),
        ("[ai_creation]", "kind 'ai_creation' cannot be discovered: its list is asked by ids"),
        ("[vidoe]", "watch.discover.kinds: unknown kind 'vidoe' (kinds: lip_sync, video,"),
        ("[]", "watch.discover.kinds: name at least one kind (discoverable: lip_sync, video,"),
    ],
)
def test_a_kind_it_cannot_cover_is_named(tmp_path: Path, given: str, wanted: str) -> None:
    assert wanted in _error(tmp_path, f" {{kinds: {given}}}\n")


@pytest.mark.parametrize(
    ("since", "epoch"),
    [
        ("'2026-11-28T09:00:00Z'", 1_795_856_400.0),
        ("2026-11-28T09:00:00Z", 1_795_856_400.0),  # YAML reads a timestamp itself
        ("'2026-11-28 10:00:00+01:00'", 1_795_856_400.0),
        ("'2026-11-28T09:00:00'", 1_795_856_400.0),  # no offset: UTC
        ("2026-11-28", 1_795_824_000.0),
        ("start", "start"),
    ],
)
def test_since(tmp_path: Path, since: str, epoch: object) -> None:
    discover = _load(tmp_path, f" {{since: {since}, labels: {{team: video}}, endpoints: [ops]}}\n")
    assert discover.watch.discover is not None
    assert discover.watch.discover.since == epoch
    assert discover.watch.discover.labels == {"team": "video"}
    assert discover.watch.discover.endpoints == ["ops"]


@pytest.mark.parametrize("since", ["yesterday", "'2026-13-01'", "12", "[]"])
def test_a_bad_time_is_named(tmp_path: Path, since: str) -> None:
    message = _error(tmp_path, f" {{since: {since}}}\n")
    assert "watch.discover.since: must be start or an ISO-8601 time like" in message


def test_unknown_endpoints_and_bad_labels_are_named(tmp_path: Path) -> None:
    message = _error(tmp_path, " {endpoints: [ops, nowhere]}\n")
    assert "watch.discover.endpoints[1]: unknown endpoint 'nowhere' (configured: ops, team)" in (
        message
    )
    message = _error(tmp_path, " {labels: {'bad key!': x}}\n")
    assert "watch.discover.labels" in message and "invalid label key 'bad key!'" in message


def test_discovery_without_list_sweeps_is_warned_about(tmp_path: Path) -> None:
    text = BASE + ENDPOINTS + "polling: {list_sweep: false}\nwatch: {discover: {}}\n"
    config = load_config(write(tmp_path, text), ENV)
    assert any(
        w.startswith("watch.discover with polling.list_sweep: false") for w in config.warnings()
    )
