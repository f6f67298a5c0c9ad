"""Issue 18: values that passed every intake check and then stopped polling, or became a
second watch: a trailing newline, a lone surrogate, a non-finite number, a huge id."""

from __future__ import annotations

import math

import pytest

from notifier.config.fields import endpoint_name
from notifier.models import job_id_problem, labels_problem


@pytest.mark.parametrize("job_id", ["probe-nl\n", "a\n", "x\r\n"])
def test_a_trailing_newline_is_not_part_of_an_id(job_id: str) -> None:
    assert job_id_problem(job_id) is not None


def test_a_huge_invalid_id_is_quoted_short() -> None:
    problem = job_id_problem("x" * 900_000 + "!")
    assert problem is not None
    assert len(problem) < 300 and "900001 characters" in problem


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({"k\n": "v"}, "invalid label key"),
        ({"k": "\ud800"}, "surrogate"),
        ({"k": "ok \udfff"}, "surrogate"),
        ({"k": math.nan}, "finite"),
        ({"k": math.inf}, "finite"),
        # Beyond 2**53 a number does not survive every JSON reader (the document says so).
        ({"k": 2**53}, "must be a number from -9007199254740991 to 9007199254740991"),
        ({"k": -(2**53)}, "must be a number from"),
        ({"k": 1e300}, "must be a number from"),
        ({"k": 10**600}, "must be a number from"),
    ],
)
def test_labels_that_could_never_be_sent_are_refused(
    labels: dict[str, object], fragment: str
) -> None:
    problem = labels_problem(labels)
    assert problem is not None and fragment in problem


def test_ordinary_labels_pass() -> None:
    assert labels_problem({"customer": "acme", "n": 7, "ratio": 0.5, "rush": True}) is None
    assert labels_problem({"max": 2**53 - 1, "min": -(2**53 - 1), "tiny": 1e-300}) is None


def test_an_endpoint_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid endpoint name"):
        endpoint_name("ops\n")
    assert endpoint_name("ops") == "ops"
