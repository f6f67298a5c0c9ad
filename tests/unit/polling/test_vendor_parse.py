"""The vendor client's parsers: whatever the wire brings, they answer or fail in one known way."""

from __future__ import annotations

import json
import math
import string
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.kinds import LIP_SYNC, Phase
from notifier.models import JobDetail
from notifier.polling.vendor import (
    VendorError,
    _expiry,
    parse_detail,
    parse_envelope,
)
from tests.kit.strategies import json_like

FIELDS = ("id", "status", "progress", "msg", "video_url", "preview_url", "duration", "create_time")
NUMBER_FIELDS = ("status", "progress", "duration", "create_time")

# Values a number field might plausibly carry, good and bad: real numbers, numeric strings,
# booleans, huge integers, non-finite floats, junk.
numberish = st.one_of(
    st.sampled_from([0, 10, 20, 30, "0", "10", "20", "30", " 20 ", "20.0", 20.0, 30.9]),
    st.integers(min_value=-(10**3), max_value=10**3),
    st.integers().map(lambda n: n * 10**400),
    st.integers().map(str),
    st.floats(),
    st.floats().map(repr),
    st.booleans(),
    json_like,
)
detail_like = st.fixed_dictionaries(
    {},
    optional={name: (numberish if name in NUMBER_FIELDS else json_like) for name in FIELDS},
)


def check_detail(detail: JobDetail, job_id: str) -> None:
    assert isinstance(detail, JobDetail)
    assert detail.id == job_id
    assert type(detail.status) is int
    assert detail.phase is LIP_SYNC.phase({"status": detail.status})
    assert detail.phase in Phase
    assert 0 <= detail.progress <= 100
    assert type(detail.progress) is int
    assert type(detail.duration) is int and detail.duration >= 0
    assert type(detail.create_time) is int and detail.create_time >= 0
    for text in (detail.msg, detail.video_url, detail.preview_url):
        assert isinstance(text, str)


@settings(max_examples=300)
@given(st.one_of(json_like, detail_like, st.dictionaries(st.text(max_size=12), json_like)))
def test_parse_detail_answers_or_raises_value_error(data: Any) -> None:
    try:
        detail = parse_detail("job-1", data)
    except ValueError:
        return
    check_detail(detail, "job-1")


@settings(max_examples=300)
@given(detail_like)
def test_parse_detail_keeps_a_valid_status_and_clamps_progress(data: dict[str, Any]) -> None:
    try:
        detail = parse_detail("job-1", data)
    except ValueError:
        return
    check_detail(detail, "job-1")
    assert detail.status == int(float(data["status"]))
    progress = data.get("progress")
    if progress is not None and progress != "":
        assert detail.progress == max(0, min(100, int(float(progress))))


# --------------------------------------------------------------------------- parse_detail cases


def test_a_full_detail_is_parsed_field_by_field() -> None:
    data = {
        "id": "ignored-the-caller-knows-the-id",
        "status": 20,
        "progress": 100,
        "msg": "success",
        "video_url": "https://cdn.example.invalid/x.mp4",
        "preview_url": "https://cdn.example.invalid/x.jpg",
        "duration": 12_345,
        "create_time": 1_700_000_000,
    }
    assert parse_detail("job-9", data) == JobDetail(
        id="job-9",
        status=20,
        progress=100,
        msg="success",
        video_url="https://cdn.example.invalid/x.mp4",
        preview_url="https://cdn.example.invalid/x.jpg",
        duration=12_345,
        create_time=1_700_000_000,
    )


def test_numeric_strings_are_accepted() -> None:
    detail = parse_detail(
        "j", {"status": "20", "progress": "55", "duration": "5000", "create_time": "1700000000"}
    )
    assert (detail.status, detail.progress, detail.duration, detail.create_time) == (
        20,
        55,
        5000,
        1_700_000_000,
    )
    assert parse_detail("j", {"status": " 10 "}).status == 10
    assert parse_detail("j", {"status": "30.0"}).status == 30


@pytest.mark.parametrize("field", NUMBER_FIELDS)
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected_in_number_fields(field: str, value: bool) -> None:
    data: dict[str, Any] = {"status": 0, field: value}
    with pytest.raises(ValueError, match="boolean"):
        parse_detail("j", data)


@pytest.mark.parametrize("status", [1, 5, 15, 40, -10, 100, "40", 10**20])
def test_unknown_statuses_are_rejected(status: Any) -> None:
    with pytest.raises(ValueError, match="unknown job status"):
        parse_detail("j", {"status": status})


@pytest.mark.parametrize(
    "status",
    [None, "", "done", "0x14", [], {}, [20], float("nan"), float("inf"), "-inf", "NaN", 10**400],
)
def test_a_missing_or_unreadable_status_is_rejected(status: Any) -> None:
    with pytest.raises(ValueError, match="status"):
        parse_detail("j", {"status": status})


def test_a_missing_status_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="status"):
        parse_detail("j", {"progress": 10})


@pytest.mark.parametrize("data", [None, [], [{"status": 20}], "20", 20, True])
def test_data_that_is_not_an_object_is_rejected(data: Any) -> None:
    with pytest.raises(ValueError, match="expected an object"):
        parse_detail("j", data)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [(150, 100), (100, 100), (-5, 0), ("250", 100), (99.9, 99), (10**30, 100), (-(10**30), 0)],
)
def test_progress_is_clamped(progress: Any, expected: int) -> None:
    assert parse_detail("j", {"status": 10, "progress": progress}).progress == expected


def test_negative_duration_and_create_time_become_zero() -> None:
    detail = parse_detail("j", {"status": 20, "duration": -1, "create_time": "-5"})
    assert (detail.duration, detail.create_time) == (0, 0)


def test_none_and_missing_fields_get_defaults() -> None:
    expected = JobDetail("j", 0, 0, "", "", "", 0, 0)
    assert parse_detail("j", {"status": 0}) == expected
    nones = dict.fromkeys(FIELDS)
    nones["status"] = 0
    assert parse_detail("j", nones) == expected
    assert parse_detail("j", {"status": 0, "progress": "", "duration": ""}) == expected


def test_non_string_text_fields_are_stringified() -> None:
    detail = parse_detail("j", {"status": 30, "msg": 402, "video_url": False})
    assert (detail.msg, detail.video_url) == ("402", "False")


# --------------------------------------------------------------------------- parse_envelope

content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/html",
            "text/plain; charset=gbk",
            "",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "/;=+-. ", max_size=40),
)
envelope_bodies = st.fixed_dictionaries(
    {},
    optional={
        "trace_id": json_like,
        "code": st.sampled_from([0, 10400, 40000, 40001, 50000, 51000]) | json_like,
        "msg": json_like,
        "data": json_like,
    },
).map(lambda body: json.dumps(body).encode())
bodies = st.one_of(
    st.binary(max_size=200),
    envelope_bodies,
    json_like.map(lambda value: json.dumps(value).encode()),
    envelope_bodies.map(lambda raw: raw.decode().encode("utf-16")),
)


@settings(max_examples=300)
@given(
    status=st.sampled_from([200]) | st.integers(min_value=100, max_value=599),
    body=bodies,
    content_type=content_types,
)
def test_parse_envelope_answers_or_raises_vendor_error(
    status: int, body: bytes, content_type: str
) -> None:
    response = httpx.Response(status, content=body, headers={"content-type": content_type})
    try:
        code, msg, _data = parse_envelope(response)
    except VendorError:
        return
    assert status == 200
    assert type(code) is int
    assert isinstance(msg, str) and len(msg) <= 500


def response(body: Any = None, *, status: int = 200, **kwargs: Any) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return httpx.Response(status, **kwargs)


def test_a_good_envelope_gives_code_msg_and_data() -> None:
    data = {"status": 20}
    assert parse_envelope(response({"trace_id": "t", "code": 0, "msg": "ok", "data": data})) == (
        0,
        "ok",
        data,
    )
    assert parse_envelope(response({"code": 40000, "msg": "record not found"})) == (
        40000,
        "record not found",
        None,
    )


def test_msg_is_a_string_and_bounded() -> None:
    assert parse_envelope(response({"code": 0, "msg": None}))[1] == ""
    assert parse_envelope(response({"code": 0}))[1] == ""
    assert parse_envelope(response({"code": 0, "msg": 7}))[1] == "7"
    assert parse_envelope(response({"code": 50000, "msg": "x" * 10_000}))[1] == "x" * 500


@pytest.mark.parametrize("code", [None, "0", "10400", True, False, 0.0, 1.5, [], {}])
def test_a_code_that_is_not_an_integer_is_rejected(code: Any) -> None:
    with pytest.raises(VendorError, match="no integer code"):
        parse_envelope(response({"code": code, "msg": "ok"}))


def test_a_missing_code_is_rejected() -> None:
    with pytest.raises(VendorError, match="no integer code"):
        parse_envelope(response({"msg": "ok", "data": {}}))


@pytest.mark.parametrize("status", [404, 429, 500, 502, 503, 301, 204])
def test_non_200_is_rejected_with_status_and_content_type(status: int) -> None:
    answer = httpx.Response(
        status,
        content=b"<html><title>Bad Gateway</title></html>",
        headers={"content-type": "text/html; charset=utf-8"},
    )
    with pytest.raises(VendorError) as info:
        parse_envelope(answer)
    assert str(info.value) == f"HTTP {status} (text/html)"


def test_a_200_that_is_not_json_is_rejected() -> None:
    html = httpx.Response(
        200, content=b"<html>maintenance</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(VendorError, match=r"not JSON \(text/html\)"):
        parse_envelope(html)
    with pytest.raises(VendorError, match=r"not JSON \(no content-type\)"):
        parse_envelope(httpx.Response(200, content=b""))
    with pytest.raises(VendorError, match="not JSON"):
        parse_envelope(httpx.Response(200, content=b"\xff\xfe\xfd"))


def test_deeply_nested_json_is_rejected_not_crashing() -> None:
    with pytest.raises(VendorError, match="not JSON"):
        parse_envelope(httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000))


@pytest.mark.parametrize("body", [[], [{"code": 0}], "ok", 0, None])
def test_json_that_is_not_an_object_is_rejected(body: Any) -> None:
    answer = httpx.Response(200, content=json.dumps(body).encode())
    with pytest.raises(VendorError, match="not a JSON object"):
        parse_envelope(answer)


# --------------------------------------------------------------------------- _expiry

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (86_400, NOW + 86_400),  # a duration (what some vendors send)
        (7_200.5, NOW + 7_200.5),
        (0, NOW),
        (1_700_086_400, 1_700_086_400.0),  # the documented unix timestamp
        (1_700_086_400.75, 1_700_086_400.75),
    ],
)
def test_expiry_reads_small_numbers_as_durations_and_big_ones_as_timestamps(
    value: float, expected: float
) -> None:
    assert _expiry(value, NOW) == expected


@pytest.mark.parametrize("value", [None, True, False, "1700086400", "3600", [], {}])
def test_expiry_must_be_a_number(value: Any) -> None:
    with pytest.raises(VendorError, match="expire_in"):
        _expiry(value, NOW)


@given(st.floats(min_value=0, max_value=4e9) | st.integers(min_value=0, max_value=4 * 10**9))
def test_expiry_never_shortens_what_the_vendor_said(value: float) -> None:
    result = _expiry(value, NOW)
    assert math.isfinite(result)
    assert result >= value
