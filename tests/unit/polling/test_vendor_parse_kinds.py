"""Every kind's answers, whatever the wire brings: a JobDetail whose phase the kind's table
gives, an event body that can be encoded, or one ValueError; never another exception."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier import kinds
from notifier.delivery.transition import build_event
from notifier.kinds import Kind, Phase
from notifier.polling.vendor import parse_detail
from tests.kit.strategies import json_like

status_like = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 9, 10, 20, 30, 40, 45, 50, 59, 99, "30", 30.0]),
    st.sampled_from(["Queued", "Ready", "Generating", "Success", "Error", "Fail", "success"]),
    json_like,
)


def details(kind: Kind) -> st.SearchStrategy[dict[str, Any]]:
    fields = {kind.status_field: status_like, "progress": json_like, "errMsg": json_like}
    fields |= {key: json_like for key in ("msg", "err_msg", "video_url", "full", "output_url")}
    return st.fixed_dictionaries({}, optional=fields)


@pytest.mark.parametrize("kind", kinds.KINDS.values(), ids=lambda k: k.name)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_kind_parses_or_raises_value_error(kind: Kind, data: st.DataObject) -> None:
    raw = data.draw(details(kind) | json_like)
    try:
        detail = parse_detail("job-1", raw, kind)
    except ValueError:
        return
    assert detail.kind == kind.name and detail.phase in Phase
    assert 0 <= detail.progress <= 100
    if detail.terminal:
        event = build_event(detail, {"team": "a"}, 1_700_000_000.0)
        body = json.loads(event.body)
        assert body["type"] == f"{kind.name}.{detail.phase.value}"
        assert body["data"]["id"] == "job-1"
        assert ("kind" in body["data"]) is (not kind.payload_fields)


@pytest.mark.parametrize(
    ("kind", "data", "phase"),
    [
        (kinds.LIP_SYNC, {"status": 20}, Phase.SUCCEEDED),
        (kinds.LIP_SYNC, {"status": 30}, Phase.FAILED),
        (kinds.VIDEO, {"status": 30}, Phase.SUCCEEDED),
        (kinds.VIDEO, {"status": 10}, Phase.RUNNING),
        (kinds.VIDEO, {"status": 42}, Phase.FAILED),
        (kinds.VIDEO, {"status": 51}, Phase.FAILED),
        (kinds.CUSTOMISED_PERSON, {"status": 2}, Phase.SUCCEEDED),
        (kinds.CUSTOMISED_PERSON, {"status": 5}, Phase.FAILED),
        (kinds.VOICE_CLONE, {"status": 3}, Phase.FAILED),
        (kinds.VOICE_CLONE, {"status": 99}, Phase.FAILED),
        (kinds.TTS, {"status": 9, "errMsg": ""}, Phase.SUCCEEDED),
        (kinds.TTS, {"status": 9, "errMsg": "欠费"}, Phase.FAILED),
        (kinds.TTS, {"status": 1}, Phase.RUNNING),
        (kinds.AI_CREATION, {"progress_desc": "Generating"}, Phase.RUNNING),
        (kinds.AI_CREATION, {"progress_desc": "Success"}, Phase.SUCCEEDED),
        (kinds.AI_CREATION, {"progress_desc": "Fail"}, Phase.FAILED),
    ],
)
def test_the_table_gives_each_status_its_phase(
    kind: Kind, data: dict[str, Any], phase: Phase
) -> None:
    assert parse_detail("job-1", data, kind).phase is phase


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (kinds.VIDEO, {"status": 35}),
        (kinds.LIP_SYNC, {"status": 40}),
        (kinds.TTS, {"status": 7}),
        (kinds.AI_CREATION, {"progress_desc": "Paused"}),
        (kinds.AI_CREATION, {}),
    ],
)
def test_a_status_the_kind_does_not_have_is_an_error_never_a_guess(
    kind: Kind, data: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"status|progress_desc"):
        parse_detail("job-1", data, kind)
