"""Property tests of config loading: generated valid configs load, junk anywhere is a
ConfigError, ${VAR} expansion never crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from notifier.config import (
    ConfigError,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from tests.kit.config_files import (
    SECRET_KEY,
    SLACK_URL,
    WHSEC,
    WHSEC2,
    assert_clean,
    write,
)

# --------------------------------------------------------------------------------------------
# Property tests

NAMES = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=20,
)
DURATION = st.integers(min_value=1, max_value=10**9).map(lambda ms: ms / 1000)


def duration_value(seconds: float) -> st.SearchStrategy[object]:
    return st.sampled_from([seconds, format_duration(seconds), str(seconds)])


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {
        "chanjing": {"app_id": draw(TEXT), "secret_key": SECRET_KEY},
    }
    if draw(st.booleans()):
        data["chanjing"]["qps"] = draw(st.integers(min_value=1, max_value=1000))
    if draw(st.booleans()):
        data["chanjing"]["base_url"] = draw(
            st.sampled_from(["https://open-api.chanjing.cc/", "http://127.0.0.1:9000"])
        )
    low, high = sorted([draw(DURATION), draw(DURATION)])
    data["polling"] = {
        "min_interval": draw(duration_value(low)),
        "max_interval": draw(duration_value(high)),
        "give_up_after": draw(duration_value(draw(DURATION))),
    }
    data["delivery"] = {
        "timeout": draw(duration_value(draw(DURATION))),
        "retry_schedule": [draw(duration_value(d)) for d in draw(st.lists(DURATION, max_size=5))],
        "concurrency": draw(st.integers(min_value=1, max_value=256)),
    }
    names = draw(st.lists(NAMES, max_size=4, unique=True))
    endpoints: list[dict[str, Any]] = []
    for name in names:
        events = draw(
            st.lists(st.sampled_from(["lip_sync.succeeded", "lip_sync.failed"]), min_size=1)
        )
        if draw(st.booleans()):
            secret: object = WHSEC if draw(st.booleans()) else [WHSEC, WHSEC2]
            endpoints.append(
                {
                    "name": name,
                    "type": "webhook",
                    "url": f"https://{name.lower().strip('.-_') or 'h'}.example.com/x",
                    "secret": secret,
                    "events": events,
                }
            )
        else:
            endpoints.append({"name": name, "type": "slack", "url": SLACK_URL, "events": events})
    data["endpoints"] = endpoints
    data["log"] = {"level": draw(st.sampled_from(["debug", "info", "warning", "error"]))}
    return data


@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=valid_configs())
def test_generated_valid_configs_load(tmp_path: Path, data: dict[str, Any]) -> None:
    path = write(tmp_path, yaml.safe_dump(data, allow_unicode=True))
    config = load_config(path, {})
    assert config.chanjing.app_id == data["chanjing"]["app_id"]
    assert config.chanjing.qps == data["chanjing"].get("qps", 10)
    assert config.polling.min_interval == parse_duration(data["polling"]["min_interval"])
    assert config.delivery.retry_schedule == [
        parse_duration(d) for d in data["delivery"]["retry_schedule"]
    ]
    assert config.endpoint_names() == [e["name"] for e in data["endpoints"]]
    assert SECRET_KEY in config.secrets()


JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
    | st.sampled_from(["${NOPE}", "${", "$${x}", "5s", "-1", "whsec_", "http://", "webhook"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=3)
    ),
    max_leaves=8,
)


def all_paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths.extend(all_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths.extend(all_paths(value, (*prefix, i)))
    return paths


def replaced(node: Any, path: tuple[Any, ...], value: object) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: replaced(node[head], rest, value)}
    copy = list(node)
    copy[head] = replaced(copy[head], rest, value)
    return copy


@settings(max_examples=300, deadline=None)
@given(data=valid_configs(), choice=st.data(), junk=JUNK, add=st.booleans())
def test_junk_anywhere_gives_config_error(
    data: dict[str, Any], choice: st.DataObject, junk: object, add: bool
) -> None:
    if add:
        # Add a junk key somewhere a mapping is.
        mappings = [p for p in all_paths(data) if isinstance(_get(data, p), dict)]
        path = choice.draw(st.sampled_from(mappings))
        key = choice.draw(st.text(max_size=8))
        assume(key not in _get(data, path))
        mutated = replaced(data, path, {**_get(data, path), key: junk})
    else:
        path = choice.draw(st.sampled_from(all_paths(data)))
        mutated = replaced(data, path, junk)
    try:
        config = parse_config(mutated, "junk.yaml", environ={})
    except ConfigError as exc:
        assert_clean(str(exc), "junk.yaml")
    else:
        # Every section forbids unknown keys: an added key is never accepted.
        assert not add, (path, key)
        # Accepted junk changed only the section it was put in.
        original = parse_config(data, "junk.yaml", environ={})
        if path:
            for section in type(config).model_fields:
                if section != path[0]:
                    assert getattr(config, section) == getattr(original, section), section


@settings(
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=JUNK)
def test_junk_file_gives_config_error(tmp_path: Path, junk: object) -> None:
    path = write(tmp_path, yaml.safe_dump(junk, allow_unicode=True))
    try:
        load_config(path, {})
    except ConfigError as exc:
        assert_clean(str(exc), str(path))
    else:
        # Junk keys are at most 8 characters: it can never spell chanjing.secret_key.
        raise AssertionError(f"junk accepted as a config: {junk!r}")


@given(text=st.text(max_size=30))
def test_env_expansion_never_crashes(text: str) -> None:
    data = {"chanjing": {"app_id": text, "secret_key": SECRET_KEY}}
    try:
        config = parse_config(data, "env.yaml", environ={"A": "x"})
    except ConfigError as exc:
        assert_clean(str(exc), "env.yaml")
    else:
        assert "${" not in config.chanjing.app_id or "$${" in text


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node
