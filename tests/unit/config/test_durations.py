"""Durations in config values: what parses, what is refused, and the round trip through
format_duration."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.config import (
    MAX_DURATION,
    format_duration,
    parse_duration,
)

# --------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("5s", 5),
        ("2m", 120),
        ("1h", 3600),
        ("1d", 86400),
        ("90", 90),
        ("1.5", 1.5),
        (".5s", 0.5),
        ("  10s ", 10),
        ("1h30m", 5400),
        ("1m 30s", 90),
        ("1d2h3m4s5ms", 93784.005),
        ("0", 0),
        (0, 0),
        (90, 90),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("abc", "invalid duration 'abc': use a number of seconds or 500ms, 5s, 2m, 1h, 1d"),
        ("", "empty"),
        ("   ", "empty"),
        ("-5s", "must not be negative"),
        ("-5", "must not be negative"),
        (-1, "must not be negative"),
        (-0.5, "must not be negative"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        ("nan", "use a number"),
        ("inf", "use a number"),
        ("5x", "use a number"),
        ("5 y", "use a number"),
        ("s", "use a number"),
        ("1e3", "use a number"),
        ("5S", "use a number"),
        (True, "use a number"),
        (False, "use a number"),
        ("3651d", "too long"),
        (10**400, "too long"),
        ("9" * 500, "too long"),
        ("1" * 200, "too long"),
    ],
)
def test_parse_duration_rejects(value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(value)
    assert fragment in str(info.value)


@pytest.mark.parametrize("value", [None, [], {}, object()])
def test_parse_duration_rejects_other_types(value: Any) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (0.001, "1ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (90061.5, "1d1h1m1.5s"),
        (0.0005, "0.0005s"),
        (-3, "-3s"),
        (math.inf, "inf"),
        (math.nan, "nan"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(min_value=0, max_value=MAX_DURATION, allow_nan=False))
def test_duration_round_trip_float(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=0, max_value=int(MAX_DURATION * 1000)))
def test_duration_round_trip_millis(millis: int) -> None:
    seconds = millis / 1000
    text = format_duration(seconds)
    assert "." not in text or text.endswith("s")
    assert parse_duration(text) == seconds
    assert format_duration(parse_duration(text)) == text


@given(st.text(max_size=40))
def test_parse_duration_garbage_only_value_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError as exc:
        assert str(exc).startswith("invalid duration")
    else:
        assert 0 <= result <= MAX_DURATION


@given(st.text(alphabet="0123456789.smhd -+ e", max_size=20))
def test_parse_duration_near_misses_only_value_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert 0 <= result <= MAX_DURATION
