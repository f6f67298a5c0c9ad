"""The watch file: valid forms, every invalid form, property test."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.intake.watchfile import WatchFileError, load_watch_file, parse_watch_items
from notifier.models import WatchSpec

NAMES = ["ops", "team"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error(tmp_path: Path, text: str, names: list[str] | None = NAMES) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(WatchFileError) as info:
        load_watch_file(path, names)
    assert str(info.value) == "\n".join(info.value.problems)
    for line in info.value.problems:
        assert line.startswith(f"{path}: "), line
        assert "Traceback" not in line
    return info.value.problems


def test_valid_forms(tmp_path: Path) -> None:
    text = """\
# jobs to watch
- 6f1a2b3c4d5e
- id: job-2
- id: job.3:x
  labels: {customer: acme, priority: 2, rush: true, ratio: 0.5}
- id: job4
  endpoints: [ops]
- id: job5
  endpoints: [team, ops, team]
  labels:
- id: job6
  endpoints: team
"""
    specs = load_watch_file(write(tmp_path, text), NAMES)
    assert specs == [
        WatchSpec("6f1a2b3c4d5e"),
        WatchSpec("job-2"),
        WatchSpec(
            "job.3:x",
            labels={"customer": "acme", "priority": "2", "rush": "true", "ratio": "0.5"},
        ),
        WatchSpec("job4", endpoints=("ops",)),
        WatchSpec("job5", endpoints=("team", "ops")),
        WatchSpec("job6", endpoints=("team",)),
    ]


def test_endpoints_not_checked_without_names(tmp_path: Path) -> None:
    specs = load_watch_file(write(tmp_path, "- {id: a, endpoints: [anything]}\n"))
    assert specs == [WatchSpec("a", endpoints=("anything",))]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[]\n", "~\n", "\n\n"])
def test_empty_is_valid(tmp_path: Path, text: str) -> None:
    assert load_watch_file(write(tmp_path, text), NAMES) == []


CASES = [
    ("bad id", "- 'bad id'\n", "[0]: invalid job id 'bad id'"),
    ("numeric id", "- 12345\n", "[0]: job id must be a string, got integer 12345; quote ids"),
    ("bool id", "- true\n", "[0]: job id must be a string, got bool"),
    ("null item", "- a\n-\n", "[1]: empty item: expected a job id or a mapping with an 'id' key"),
    ("list item", "- [a, b]\n", "[0]: must be a job id or a mapping with an 'id' key, got list"),
    ("missing id", "- {labels: {a: b}}\n", "[0].id: required key is missing"),
    ("bad mapping id", "- {id: 'x y'}\n", "[0].id: invalid job id 'x y'"),
    (
        "unknown key",
        "- {id: a, label: {a: b}}\n",
        "[0].label: unknown key (allowed: id, kind, account, labels, endpoints)",
    ),
    ("labels not mapping", "- {id: a, labels: [x]}\n", "[0].labels: labels must be a mapping"),
    ("bad label key", "- {id: a, labels: {'b a d': x}}\n", "[0].labels: invalid label key 'b a d'"),
    (
        "nested label",
        "- {id: a, labels: {k: {x: 1}}}\n",
        "[0].labels: label 'k' must have a scalar value, got dict",
    ),
    (
        "long label",
        f"- {{id: a, labels: {{k: {'x' * 600}}}}}\n",
        "[0].labels: label 'k' is longer than 512 characters",
    ),
    (
        "unknown endpoint",
        "- {id: a, endpoints: [ops, nope]}\n",
        "[0].endpoints[1]: unknown endpoint 'nope' (configured: ops, team)",
    ),
    (
        "empty endpoints",
        "- {id: a, endpoints: []}\n",
        "[0].endpoints: must list at least one endpoint name",
    ),
    (
        "endpoints mapping",
        "- {id: a, endpoints: {ops: 1}}\n",
        "[0].endpoints: must be a list of endpoint names, got mapping",
    ),
    (
        "endpoint not string",
        "- {id: a, endpoints: [1]}\n",
        "[0].endpoints[0]: must be an endpoint name, got integer",
    ),
    (
        "duplicate id",
        "- a\n- b\n- {id: a}\n",
        "[2].id: duplicate job id 'a' (already listed at [0])",
    ),
    ("duplicate plain id", "- a\n- a\n", "[1]: duplicate job id 'a' (already listed at [0])"),
    ("top level mapping", "a: b\n", "top level must be a list of job ids"),
    ("top level string", "abc\n", "top level must be a list of job ids"),
    ("yaml syntax", "- a\n- [b\n", "YAML syntax error at line"),
    ("duplicate yaml key", "- {id: a, id: b}\n", "duplicate key 'id'"),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid(tmp_path: Path, text: str, expected: str) -> None:
    problems = error(tmp_path, text)
    assert any(expected in line for line in problems), problems


def test_unknown_endpoint_when_none_configured(tmp_path: Path) -> None:
    problems = error(tmp_path, "- {id: a, endpoints: [ops]}\n", names=[])
    assert problems == [
        f"{tmp_path / 'watch.yaml'}: [0].endpoints[0]: unknown endpoint 'ops' (configured: none)"
    ]


def test_all_problems_collected(tmp_path: Path) -> None:
    text = "- ok\n- 'b a d'\n- {id: c, labels: 5, endpoints: [zz], extra: 1}\n- ok\n"
    problems = error(tmp_path, text)
    keys = [line.split(": ")[1] for line in problems]
    assert keys == ["[1]", "[2].extra", "[2].labels", "[2].endpoints[0]", "[3]"]


def test_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(WatchFileError, match=r"nope.yaml: file not found$"):
        load_watch_file(tmp_path / "nope.yaml")


def test_message_format_with_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "- a\n- b\n- c\n- {id: d, labels: x}\n")
    with pytest.raises(WatchFileError) as info:
        load_watch_file("watch.yaml")
    assert str(info.value) == (
        "watch.yaml: [3].labels: labels must be a mapping of key: value, got string"
    )


def test_parse_watch_items_directly() -> None:
    assert parse_watch_items(["a", {"id": "b"}], "<queue>") == [WatchSpec("a"), WatchSpec("b")]
    with pytest.raises(WatchFileError, match=r"^<queue>: \[0\]: invalid job id"):
        parse_watch_items(["-x"], "<queue>")


JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["a", "job-1", "ops", "team", "id", "labels", "endpoints"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "labels", "endpoints"]) | st.text(max_size=5) | st.integers(),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(data=JUNK, names=st.none() | st.just(NAMES))
def test_arbitrary_data_gives_specs_or_watch_file_error(
    data: object, names: list[str] | None
) -> None:
    try:
        specs = parse_watch_items(data, "w.yaml", names)
    except WatchFileError as exc:
        assert exc.problems
        assert all(line.startswith("w.yaml: ") for line in exc.problems)
    else:
        assert all(isinstance(s, WatchSpec) for s in specs)
        assert len({s.job_id for s in specs}) == len(specs)
        for spec in specs:
            assert all(isinstance(v, str) for v in spec.labels.values())
            if names is not None and spec.endpoints is not None:
                assert set(spec.endpoints) <= set(names)


@given(st.lists(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}\Z"), unique=True))
def test_valid_ids_round_trip(ids: list[str]) -> None:
    assert [s.job_id for s in parse_watch_items(ids, "w.yaml")] == ids
