"""Issue 21, item 3: every intake path takes an optional ``kind`` (absent: lip_sync), worded
by the kind table when it is none; the same id under two kinds is two watches."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.intake.queue import parse_queue_row
from notifier.intake.watchfile import WatchFileError, parse_watch_items
from notifier.kinds import KINDS, kind_problem
from notifier.models import WatchSpec
from notifier.watchspec import Problem, parse_watch, parse_watches, watch_specs


def test_absent_means_lip_sync_on_every_path() -> None:
    assert parse_watch("j1", endpoints_configured=None) == WatchSpec("j1", kind="lip_sync")
    assert parse_queue_row("j1", None, None, None) == WatchSpec("j1")
    assert parse_watch_items(["j1", {"id": "j2"}], "w.yaml") == [WatchSpec("j1"), WatchSpec("j2")]
    assert watch_specs(["j1"]) == [WatchSpec("j1")]


@pytest.mark.parametrize("name", list(KINDS))
def test_every_kind_of_the_table_is_taken(name: str) -> None:
    assert parse_watch("j1", endpoints_configured=None, kind=name) == WatchSpec("j1", kind=name)
    assert parse_queue_row("j1", None, None, None, name) == WatchSpec("j1", kind=name)
    assert parse_watch_items([{"id": "j1", "kind": name}], "w.yaml") == [WatchSpec("j1", kind=name)]


@pytest.mark.parametrize("bad", ["Video", "lipsync", "", 3, ["video"], True])
def test_an_unknown_kind_is_named_in_the_kind_tables_words(bad: object) -> None:
    wording = kind_problem(bad)
    assert wording is not None and "kinds: lip_sync, video" in wording
    assert parse_watch("j1", endpoints_configured=None, kind=bad) == [Problem(("kind",), wording)]
    assert parse_queue_row("j1", None, None, None, bad) == f"kind: {wording}"
    with pytest.raises(WatchFileError) as info:
        parse_watch_items([{"id": "j1", "kind": bad}], "w.yaml")
    assert info.value.problems == [f"w.yaml: [0].kind: {wording}"]


def test_a_kind_problem_comes_with_the_others() -> None:
    _specs, problems = parse_watches(["bad id"], {"k": "v"}, None, endpoints_configured=None,
                                     kind="nope")  # fmt: skip
    assert [p.loc for p in problems] == [("ids", 0), ("kind",)]


def test_a_watch_file_lists_one_id_under_two_kinds_but_not_twice_under_one(
    tmp_path: Path,
) -> None:
    items = [{"id": "42"}, {"id": "42", "kind": "video"}]
    assert parse_watch_items(items, "w.yaml") == [WatchSpec("42"), WatchSpec("42", kind="video")]
    with pytest.raises(WatchFileError) as info:
        parse_watch_items([*items, {"id": "42", "kind": "video"}, "42"], "w.yaml")
    assert info.value.problems == [
        "w.yaml: [2].id: duplicate job id '42' of kind video (already listed at [1])",
        "w.yaml: [3]: duplicate job id '42' (already listed at [0])",
    ]
