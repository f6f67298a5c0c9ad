"""The one watch-spec parser (issue 20, item 3): every intake path says a problem in the
parser's words, inside its own frame, and the API's pydantic model takes exactly what the
parser takes."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from notifier.config import ConfigError, parse_config
from notifier.intake.bodies import WatchRequest, problems_of
from notifier.intake.callback import callback_job_id
from notifier.intake.http_api import BadRequest
from notifier.intake.queue import parse_queue_row
from notifier.intake.watchfile import WatchFileError, parse_watch_items
from notifier.models import WatchSpec, unknown_endpoint
from notifier.watchspec import (
    Problem,
    WatchProblems,
    describe,
    id_problem,
    labels_check,
    parse_watch,
    parse_watches,
    watch_specs,
)

NAMES = ["ops", "team"]
SECRET = "whsec_" + base64.b64encode(bytes(32)).decode()


def _file_problems(item: object) -> list[str]:
    with pytest.raises(WatchFileError) as info:
        parse_watch_items([item], "w.yaml", NAMES)
    return info.value.problems


def _api_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        WatchRequest.model_validate(body, context={"endpoints": NAMES})
    return problems_of(info.value)


def test_an_unknown_endpoint_is_one_sentence_on_every_path() -> None:
    said = unknown_endpoint("nope", NAMES)
    assert said == "unknown endpoint 'nope' (configured: ops, team)"
    assert _file_problems({"id": "a", "endpoints": ["ops", "nope"]}) == [
        f"w.yaml: [0].endpoints[1]: {said}"
    ]
    assert parse_queue_row("a", None, '["ops", "nope"]', NAMES) == f"endpoints[1]: {said}"
    assert _api_problems({"ids": ["a"], "endpoints": ["ops", "nope"]}) == [
        {"loc": ["endpoints", 1], "msg": said}
    ]
    parsed = parse_watches(["a"], None, ["ops", "nope"], endpoints_configured=NAMES)
    assert parsed.problems == [Problem(("endpoints", 1), said)]
    config = {
        "chanjing": {"app_id": "a", "secret_key": "s"},
        "state": {"path": "s.db"},
        "endpoints": [
            {"name": n, "type": "webhook", "url": "https://x.example/h", "secret": SECRET}
            for n in NAMES
        ],
        "intake": {"endpoints": ["ops", "nope"]},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(config, "c.yaml")
    assert f"intake.endpoints[1]: {said}" in str(info.value)


def test_none_configured_is_said_the_same_way() -> None:
    assert unknown_endpoint("ops", []) == "unknown endpoint 'ops' (configured: none)"


@pytest.mark.parametrize("bad", ["bad id!", 12345, True, None, "x\n", "é"])
def test_a_bad_job_id_is_one_sentence_on_every_path(bad: object) -> None:
    said = id_problem(bad)
    assert said is not None
    assert parse_watch(bad, endpoints_configured=None) == [Problem(("id",), said)]
    assert _api_problems({"ids": ["ok", bad]}) == [{"loc": ["ids", 1], "msg": said}]
    if bad is not None:  # a null data.id is no id at all: the callback says so instead
        with pytest.raises(BadRequest) as info:
            callback_job_id({"data": {"id": bad}})
        assert str(info.value) == f"data.id: {said}"
    if isinstance(bad, str):  # a queue column and a YAML item are text
        assert parse_queue_row(bad, None, None, NAMES) == f"id: {said}"
        if bad.strip():
            assert _file_problems({"id": bad}) == [f"w.yaml: [0].id: {said}"]


def test_a_number_for_an_id_gets_the_hint_on_every_path() -> None:
    said = "job id must be a string, got integer 12345; quote ids that look like numbers"
    assert id_problem(12345) == said
    assert _file_problems(12345) == [f"w.yaml: [0]: {said}"]
    assert _api_problems({"ids": [12345]}) == [{"loc": ["ids", 0], "msg": said}]


@pytest.mark.parametrize(
    "labels",
    [{"b a d": "x"}, {"k": {"x": 1}}, {"k": "x" * 600}, {"k": math.nan}, [1], "x", 0],
)
def test_bad_labels_are_one_sentence_on_every_path(labels: object) -> None:
    said = labels_check(labels)
    assert said is not None
    assert parse_watch("a", labels, endpoints_configured=None) == [Problem(("labels",), said)]
    assert _file_problems({"id": "a", "labels": labels}) == [f"w.yaml: [0].labels: {said}"]
    assert _api_problems({"ids": ["a"], "labels": labels}) == [{"loc": ["labels"], "msg": said}]
    if not (isinstance(labels, dict) and any(isinstance(v, float) for v in labels.values())):
        assert parse_queue_row("a", json.dumps(labels), None, NAMES) == f"labels: {said}"


def test_every_problem_of_a_request_is_found_with_where_it_is() -> None:
    parsed = parse_watches(
        ["ok", "bad id", 7], {"k": {"x": 1}}, ["ops", 3, "zz"], endpoints_configured=NAMES
    )
    assert parsed.specs == []
    assert [p.loc for p in parsed.problems] == [
        ("ids", 1),
        ("ids", 2),
        ("labels",),
        ("endpoints", 1),
        ("endpoints", 2),
    ]
    assert describe(parsed.problems).startswith("ids[1]: invalid job id 'bad id'")


def test_specs_are_stored_form_and_repeats_are_one() -> None:
    parsed = parse_watches(
        ["a", "b", "a"], {"n": 7, "rush": True}, ["team", "ops", "team"], endpoints_configured=NAMES
    )
    labels = {"n": "7", "rush": "true"}
    assert parsed.specs == [
        WatchSpec("a", labels, ("team", "ops")),
        WatchSpec("b", labels, ("team", "ops")),
    ]
    assert parsed.problems == []
    assert parse_watch("a", endpoints_configured=None) == WatchSpec("a")


def test_input_promised_checked_that_is_not_raises() -> None:
    assert watch_specs(["a"], {"k": "v"}, ["ops"]) == [WatchSpec("a", {"k": "v"}, ("ops",))]
    with pytest.raises(WatchProblems, match="invalid job id"):
        watch_specs(["bad id"])


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
IDS = st.lists(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,8}\Z") | JSONISH, max_size=3)


@given(
    ids=IDS,
    labels=st.none() | JSONISH | st.dictionaries(st.from_regex(r"\A[a-z]{1,4}\Z"), JSONISH),
    endpoints=st.none() | JSONISH | st.lists(st.sampled_from([*NAMES, "zz"]), max_size=3),
)
def test_the_api_model_takes_exactly_what_the_parser_takes(
    ids: list[object], labels: object, endpoints: object
) -> None:
    body: dict[str, Any] = {"ids": ids, "endpoints": endpoints}
    if labels is not None:
        body["labels"] = labels
    parsed = parse_watches(ids, labels, endpoints, endpoints_configured=NAMES)
    try:
        model = WatchRequest.model_validate(body, context={"endpoints": NAMES})
    except ValidationError as exc:
        said = {p["msg"] for p in problems_of(exc)}
        # The model's own rules (a non-empty list of ids) or the parser's words, never pydantic's.
        assert not ids or said <= {p.msg for p in parsed.problems}, (said, parsed.problems)
    else:
        assert parsed.problems == [], parsed.problems
        assert parsed.specs[0].labels == model.stored_labels
