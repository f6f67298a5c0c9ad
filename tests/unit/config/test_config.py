"""Config loading: happy paths, ${VAR} expansion, validation messages, the shipped example."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from notifier.config import (
    Config,
    ConfigError,
    SlackEndpoint,
    WebhookEndpoint,
    load_config,
    parse_config,
)
from notifier.kinds import JOB_EVENT_TYPES
from tests.kit.config_files import (
    BASE,
    ENDPOINTS,
    ENV,
    SECRET_KEY,
    SLACK_URL,
    WHSEC,
    WHSEC2,
    config_error,
    load_text,
    write,
)

REPO = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------------------------
# Happy paths


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE)
    assert config.chanjing.base_url == "https://open-api.chanjing.cc"
    assert config.chanjing.app_id == "app-1"
    assert config.chanjing.secret_key.get_secret_value() == SECRET_KEY
    assert config.chanjing.qps == 10
    assert config.state.path == Path("/var/lib/chanjing-notifier/state.db")
    assert config.watch.file is None
    assert (config.polling.min_interval, config.polling.max_interval) == (5, 120)
    assert config.polling.give_up_after == 86400
    assert config.delivery.timeout == 15
    assert config.delivery.retry_schedule == [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800]
    assert config.delivery.concurrency == 8
    assert config.endpoints == []
    assert config.log.level == "info"
    assert config.metrics.listen is None
    assert config.metrics.address() is None
    assert config.warnings() == ["no endpoints configured: events will be recorded but not sent"]
    assert config.secrets() == [SECRET_KEY]


def test_full_config(tmp_path: Path) -> None:
    text = (
        BASE.replace("app_id: app-1", "app_id: app-1\n  base_url: http://127.0.0.1:8080/")
        + """\
state: {path: /tmp/x/state.db}
watch: {file: /tmp/x/watch.yaml}
polling: {min_interval: 500ms, max_interval: 2m, give_up_after: 1d}
delivery: {timeout: 3, retry_schedule: [1s, 1m30s], concurrency: 2}
log: {level: DEBUG}
metrics: {listen: "[::1]:9464"}
"""
        + ENDPOINTS
    )
    config = load_text(tmp_path, text)
    assert config.chanjing.base_url == "http://127.0.0.1:8080"
    assert config.state.path == Path("/tmp/x/state.db")
    assert config.watch.file == Path("/tmp/x/watch.yaml")
    assert config.polling.min_interval == 0.5
    assert config.delivery.retry_schedule == [1, 90]
    assert config.log.level == "debug"
    assert config.metrics.address() == ("::1", 9464)
    assert config.endpoint_names() == ["ops", "team"]
    ops = config.endpoint("ops")
    team = config.endpoint("team")
    assert isinstance(ops, WebhookEndpoint)
    assert isinstance(team, SlackEndpoint)
    assert config.endpoint("nope") is None
    assert ops.secret_values() == [WHSEC]
    # No events listed: every job event of every kind, shown as the pattern it is.
    assert ops.events == ["*"]
    assert ops.event_types() == JOB_EVENT_TYPES
    assert ops.wants("lip_sync.failed") and not ops.wants("vendor.failing")
    assert team.events == ["lip_sync.failed"]
    assert not team.wants("lip_sync.succeeded")
    assert team.target_url() == SLACK_URL
    assert team.display_target() == "https://hooks.slack.com"
    assert SLACK_URL not in repr(config)
    assert SECRET_KEY not in repr(config)
    assert WHSEC not in repr(config)
    assert set(config.secrets()) == {SECRET_KEY, WHSEC, SLACK_URL}
    assert config.warnings() == []


def test_an_endpoint_may_take_only_rejected_ids(tmp_path: Path) -> None:
    # Issue 18, item 7b: lip_sync.rejected is a job event of its own (in the default set).
    text = BASE + ENDPOINTS.replace("[lip_sync.failed]", "[lip_sync.rejected]")
    team = load_text(tmp_path, text).endpoint("team")
    assert team is not None and team.events == ["lip_sync.rejected"]
    assert team.wants("lip_sync.rejected") and not team.wants("lip_sync.failed")


def test_secret_list_and_single_string(tmp_path: Path) -> None:
    text = BASE + ENDPOINTS.replace("secret: ${WH}", f"secret: [{WHSEC}, {WHSEC2}]")
    ops = load_text(tmp_path, text).endpoint("ops")
    assert isinstance(ops, WebhookEndpoint)
    assert ops.secret_values() == [WHSEC, WHSEC2]
    single = load_text(tmp_path, BASE + ENDPOINTS).endpoint("ops")
    assert isinstance(single, WebhookEndpoint)
    assert single.secret_values() == [WHSEC]


def test_unpadded_secret_accepted(tmp_path: Path) -> None:
    raw = base64.b64encode(b"x" * 25).decode()
    assert raw.endswith("=")
    text = BASE + ENDPOINTS.replace("${WH}", "whsec_" + raw.rstrip("="))
    assert load_text(tmp_path, text).endpoint("ops") is not None


def test_empty_sections_mean_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE + "polling:\ndelivery:\nendpoints:\nlog:\n")
    assert config.polling.min_interval == 5
    assert config.endpoints == []


def test_duration_numbers_and_strings(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE + "polling: {min_interval: 2, max_interval: '90'}\n")
    assert (config.polling.min_interval, config.polling.max_interval) == (2, 90)


def test_empty_retry_schedule(tmp_path: Path) -> None:
    assert (
        load_text(tmp_path, BASE + "delivery: {retry_schedule: []}\n").delivery.retry_schedule == []
    )


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = write(sub, BASE + "state: {path: state.db}\nwatch: {file: w/watch.yaml}\n")
    config = load_config(path, ENV)
    assert config.state.path == sub.absolute() / "state.db"
    assert config.watch.file == sub.absolute() / "w" / "watch.yaml"


def test_events_deduplicated(tmp_path: Path) -> None:
    text = BASE + ENDPOINTS.replace(
        "events: [lip_sync.failed]", "events: [lip_sync.failed, lip_sync.failed]"
    )
    team = load_text(tmp_path, text).endpoint("team")
    assert team is not None and team.events == ["lip_sync.failed"]


def test_models_are_frozen(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE)
    with pytest.raises(Exception, match="frozen"):
        config.chanjing.qps = 5


def test_parse_config_directly() -> None:
    config = parse_config(
        {"chanjing": {"app_id": "a", "secret_key": "${SK}"}}, "<demo>", environ=ENV
    )
    assert config.chanjing.secret_key.get_secret_value() == SECRET_KEY
    with pytest.raises(ConfigError, match=r"^<demo>: chanjing.app_id: required key is missing$"):
        parse_config({"chanjing": {"secret_key": "x"}}, "<demo>", environ={})


def test_models_can_be_built_in_code() -> None:
    config = Config.model_validate(
        {
            "chanjing": {"app_id": "a", "secret_key": "b"},
            "endpoints": [{"name": "x", "type": "webhook", "url": "http://h", "secret": WHSEC}],
        }
    )
    assert config.endpoint_names() == ["x"]


# --------------------------------------------------------------------------------------------
# Environment expansion


def test_env_expansion_inside_strings(tmp_path: Path) -> None:
    text = BASE.replace("app_id: app-1", "app_id: pre-${APP}-post")
    config = load_text(tmp_path, text, {**ENV, "APP": "x"})
    assert config.chanjing.app_id == "pre-x-post"


def test_env_escape_is_literal(tmp_path: Path) -> None:
    text = BASE.replace("app_id: app-1", "app_id: a$${APP}b")
    assert load_text(tmp_path, text, ENV).chanjing.app_id == "a${APP}b"


def test_env_default(tmp_path: Path) -> None:
    text = BASE.replace("app_id: app-1", "app_id: ${APP:-fallback}")
    assert load_text(tmp_path, text, ENV).chanjing.app_id == "fallback"
    assert load_text(tmp_path, text, {**ENV, "APP": ""}).chanjing.app_id == "fallback"
    assert load_text(tmp_path, text, {**ENV, "APP": "set"}).chanjing.app_id == "set"


def test_env_numbers_from_strings(tmp_path: Path) -> None:
    text = BASE + "  qps: ${QPS}\npolling: {min_interval: '${MIN}'}\n"
    config = load_text(tmp_path, text, {**ENV, "QPS": "7", "MIN": "1m"})
    assert config.chanjing.qps == 7
    assert config.polling.min_interval == 60


def test_env_not_expanded_in_keys_or_recursively(tmp_path: Path) -> None:
    text = BASE.replace("app_id: app-1", "app_id: ${APP}")
    assert load_text(tmp_path, text, {**ENV, "APP": "${SK}"}).chanjing.app_id == "${SK}"


def test_env_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CN_TEST_SK", SECRET_KEY)
    path = write(tmp_path, BASE.replace("${SK}", "${CN_TEST_SK}"))
    assert load_config(path).chanjing.secret_key.get_secret_value() == SECRET_KEY


def test_unset_env_suppresses_follow_up_errors(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE.replace("${SK}", "${OPS_SECRET}"))
    assert message.splitlines() == [
        f"{tmp_path / 'config.yaml'}: chanjing.secret_key: "
        "environment variable OPS_SECRET is not set"
    ]


# --------------------------------------------------------------------------------------------
# Every error names the file and the key, cleanly

CASES: list[tuple[str, str, dict[str, str] | None, str]] = [
    # (id, yaml text, environ or None for ENV, expected "key: problem" fragment)
    (
        "missing app_id",
        "chanjing:\n  secret_key: x\n",
        None,
        "chanjing.app_id: required key is missing",
    ),
    ("missing chanjing", "state: {path: /tmp/s.db}\n", None, "chanjing: required key is missing"),
    ("null chanjing", "chanjing:\n", None, "chanjing.app_id: required key is missing"),
    (
        "qps zero",
        BASE + "  qps: 0\n",
        None,
        "chanjing.qps: must be an integer from 1 to 1000, got 0",
    ),
    (
        "qps word",
        BASE + "  qps: ten\n",
        None,
        "chanjing.qps: must be an integer from 1 to 1000, got 'ten'",
    ),
    ("qps negative", BASE + "  qps: -1\n", None, "chanjing.qps: must be an integer"),
    ("qps bool", BASE + "  qps: true\n", None, "chanjing.qps: must be an integer"),
    ("qps float", BASE + "  qps: 2.5\n", None, "chanjing.qps: must be an integer"),
    ("qps huge", BASE + "  qps: 100000\n", None, "chanjing.qps: must be an integer"),
    (
        "unknown top key",
        BASE + "colour: red\n",
        None,
        "colour: unknown key (allowed: chanjing, accounts, state, watch, polling, delivery, "
        "alerts, endpoints, log, metrics, intake, gateway)",
    ),
    (
        "unknown nested key",
        BASE + "  region: cn\n",
        None,
        "chanjing.region: unknown key (allowed: base_url, app_id, secret_key, qps)",
    ),
    (
        "unknown polling key",
        BASE + "polling: {interval: 5s}\n",
        None,
        "polling.interval: unknown key (allowed: min_interval, max_interval, give_up_after, "
        "policy, list_sweep)",
    ),
    (
        "bad duration",
        BASE + "polling: {min_interval: fast}\n",
        None,
        "polling.min_interval: invalid duration 'fast': "
        "use a number of seconds or 500ms, 5s, 2m, 1h, 1d",
    ),
    (
        "zero duration",
        BASE + "polling: {min_interval: 0s}\n",
        None,
        "polling.min_interval: must be a positive duration",
    ),
    (
        "negative duration",
        BASE + "delivery: {timeout: -5s}\n",
        None,
        "delivery.timeout: invalid duration '-5s': must not be negative",
    ),
    (
        "min > max",
        BASE + "polling: {min_interval: 5m, max_interval: 2m}\n",
        None,
        "polling.min_interval: must not be greater than polling.max_interval (5m > 2m)",
    ),
    (
        "retry not list",
        BASE + "delivery: {retry_schedule: 5s}\n",
        None,
        "delivery.retry_schedule: must be a list of durations",
    ),
    (
        "retry bad item",
        BASE + "delivery: {retry_schedule: [5s, soon]}\n",
        None,
        "delivery.retry_schedule[1]: invalid duration 'soon'",
    ),
    (
        "concurrency zero",
        BASE + "delivery: {concurrency: 0}\n",
        None,
        "delivery.concurrency: must be an integer from 1 to 256",
    ),
    ("section not mapping", BASE + "polling: [5s]\n", None, "polling: must be a mapping, got list"),
    (
        "endpoints not list",
        BASE + "endpoints: {name: ops}\n",
        None,
        "endpoints: must be a list, got mapping",
    ),
    (
        "endpoint not mapping",
        BASE + "endpoints: [ops]\n",
        None,
        "endpoints[0]: must be a mapping, got string",
    ),
    (
        "unknown endpoint type",
        BASE + ENDPOINTS.replace("type: slack", "type: teams"),
        None,
        "endpoints[1].type: unknown endpoint type 'teams' (allowed: webhook, slack)",
    ),
    (
        "missing endpoint type",
        BASE + "endpoints: [{name: x, url: 'https://h'}]\n",
        None,
        "endpoints[0].type: required key is missing (one of: webhook, slack)",
    ),
    (
        "unknown event",
        BASE + ENDPOINTS.replace("[lip_sync.failed]", "[lip_sync.done]"),
        None,
        "endpoints[1].events[0]: endpoint 'team': unknown event 'lip_sync.done' "
        "(outcomes: succeeded, failed, expired, rejected, or * for all of them)",
    ),
    (
        "empty events",
        BASE + ENDPOINTS.replace("[lip_sync.failed]", "[]"),
        None,
        "endpoints[1].events: must list at least one event",
    ),
    (
        "events not list",
        BASE + ENDPOINTS.replace("[lip_sync.failed]", "lip_sync.failed"),
        None,
        "endpoints[1].events: must be a list of events",
    ),
    (
        "secret not whsec",
        BASE + ENDPOINTS,
        {**ENV, "WH": "TOPSECRET-plain"},
        "endpoints[0].secret: must start with 'whsec_' followed by base64 (24-64 bytes)",
    ),
    (
        "secret short",
        BASE + ENDPOINTS,
        {**ENV, "WH": "whsec_" + base64.b64encode(b"TOPSECRET").decode()},
        "endpoints[0].secret: must start with 'whsec_' followed by base64 (24-64 bytes); "
        "it decodes to 9 bytes",
    ),
    (
        "secret long",
        BASE + ENDPOINTS,
        {**ENV, "WH": "whsec_" + base64.b64encode(b"T" * 65).decode()},
        "endpoints[0].secret: must start with 'whsec_'",
    ),
    (
        "secret not base64",
        BASE + ENDPOINTS,
        {**ENV, "WH": "whsec_TOPSECRET!!!!!!!!!!!!!!!!!!!!!!!!!!"},
        "endpoints[0].secret: must start with 'whsec_' followed by base64 (24-64 bytes); "
        "the part after 'whsec_' is not valid base64",
    ),
    (
        "secret list bad item",
        BASE + ENDPOINTS.replace("secret: ${WH}", "secret: ['${WH}', whsec_TOPSECRET]"),
        None,
        "endpoints[0].secret[1]: must start with 'whsec_'",
    ),
    (
        "secret empty list",
        BASE + ENDPOINTS.replace("secret: ${WH}", "secret: []"),
        None,
        "endpoints[0].secret: must have at least one secret",
    ),
    (
        "secret missing",
        BASE + ENDPOINTS.replace("    secret: ${WH}\n", ""),
        None,
        "endpoints[0].secret: required key is missing",
    ),
    (
        "secret number",
        BASE + ENDPOINTS.replace("secret: ${WH}", "secret: 12345"),
        None,
        "endpoints[0].secret: must be a 'whsec_...' secret or a list of them, got integer",
    ),
    (
        "duplicate names",
        BASE + ENDPOINTS.replace("name: team", "name: ops"),
        None,
        "endpoints[1].name: duplicate endpoint name 'ops' (already used by endpoints[0])",
    ),
    (
        "bad name",
        BASE + ENDPOINTS.replace("name: team", "name: 'my team'"),
        None,
        "endpoints[1].name: invalid endpoint name 'my team'",
    ),
    (
        "ftp url",
        BASE + ENDPOINTS.replace("https://hooks.example.com/chanjing", "ftp://hooks.example.com/x"),
        None,
        "endpoints[0].url: must be an http(s) URL",
    ),
    (
        "url no host",
        BASE + ENDPOINTS.replace("https://hooks.example.com/chanjing", "'https:///x'"),
        None,
        "endpoints[0].url: must be an http(s) URL with a host",
    ),
    (
        "url bad port",
        BASE + ENDPOINTS.replace("hooks.example.com/chanjing", "h:99999/x"),
        None,
        "endpoints[0].url: must be an http(s) URL",
    ),
    (
        "slack bad url",
        BASE + ENDPOINTS,
        {**ENV, "SLACK": "hooks.slack.com/TOPSECRET"},
        "endpoints[1].url: must be an http(s) URL",
    ),
    (
        "slack with secret",
        BASE + ENDPOINTS + "    secret: ${WH}\n",
        None,
        "endpoints[1].secret: unknown key (allowed: name, events, accounts, type, url)",
    ),
    (
        "base_url bad",
        BASE + "  base_url: open-api.chanjing.cc\n",
        None,
        "chanjing.base_url: must be an http(s) URL",
    ),
    (
        "base_url query",
        BASE + "  base_url: https://h/?a=1\n",
        None,
        "chanjing.base_url: must not have a query string or fragment",
    ),
    (
        "unset env var",
        BASE.replace("${SK}", "${OPS_SECRET}"),
        {},
        "chanjing.secret_key: environment variable OPS_SECRET is not set",
    ),
    (
        "two unset env vars",
        BASE.replace("${SK}", "${A}${B}"),
        {},
        "chanjing.secret_key: environment variables A, B are not set",
    ),
    (
        "malformed reference",
        BASE.replace("${SK}", "${not-a-name}"),
        None,
        "chanjing.secret_key: malformed ${...} reference",
    ),
    ("empty env var", BASE, {"SK": ""}, "chanjing.secret_key: must not be empty"),
    (
        "secret_key whitespace",
        BASE,
        {"SK": "abc\n"},
        "chanjing.secret_key: must not start or end with whitespace",
    ),
    (
        "secret_key not string",
        BASE.replace("${SK}", "[1, 2]"),
        None,
        "chanjing.secret_key: must be a string, got list",
    ),
    ("empty app id", BASE.replace("app-1", "''"), None, "chanjing.app_id: must not be empty"),
    ("empty path", BASE + "state: {path: ''}\n", None, "state.path: must not be empty"),
    (
        "path not string",
        BASE + "state: {path: [a]}\n",
        None,
        "state.path: must be a file path, got list",
    ),
    (
        "bad log level",
        BASE + "log: {level: loud}\n",
        None,
        "log.level: unknown log level 'loud' (allowed: debug, info, warning, error)",
    ),
    ("bad listen", BASE + "metrics: {listen: '9464'}\n", None, "metrics.listen: must be host:port"),
    (
        "listen port 0",
        BASE + "metrics: {listen: 'localhost:0'}\n",
        None,
        "metrics.listen: must be host:port (port 1-65535)",
    ),
    (
        "yaml syntax",
        "chanjing:\n  app_id: [a\n  secret_key: b\n",
        None,
        "YAML syntax error at line 3, column",
    ),
    ("yaml tab", "chanjing:\n\tapp_id: a\n", None, "YAML syntax error at line 2, column 1"),
    (
        "yaml duplicate key",
        BASE + "  app_id: again\n",
        None,
        "YAML error at line 4, column 3: duplicate key 'app_id'",
    ),
    ("empty file", "", None, "file is empty"),
    ("only comments", "# nothing here\n", None, "file is empty"),
    (
        "top level list",
        "- chanjing\n",
        None,
        "top level must be a mapping with keys chanjing, accounts, state",
    ),
    ("top level scalar", "hello\n", None, "top level must be a mapping"),
    ("multiple documents", BASE + "---\n" + BASE, None, "YAML syntax error at line 4, column 1"),
]


@pytest.mark.parametrize(
    ("text", "environ", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_config_errors(
    tmp_path: Path, text: str, environ: dict[str, str] | None, expected: str
) -> None:
    message = config_error(tmp_path, text, environ)
    assert expected in message, message


def test_error_uses_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, BASE + "polling: {min_interval: fast}\n")
    with pytest.raises(ConfigError) as info:
        load_config("config.yaml", ENV)
    assert str(info.value) == (
        "config.yaml: polling.min_interval: invalid duration 'fast': "
        "use a number of seconds or 500ms, 5s, 2m, 1h, 1d"
    )


def test_many_problems_reported_together(tmp_path: Path) -> None:
    text = "chanjing:\n  app_id: ''\n  qps: 0\npolling: {max_interval: x}\nfoo: 1\n"
    lines = config_error(tmp_path, text, {}).splitlines()
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "chanjing.app_id",
        "chanjing.secret_key",
        "chanjing.qps",
        "polling.max_interval",
        "foo",
    ]


def test_odd_keys_are_quoted(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "'a b': 1\n'': 2\n\"x\\ty\": 3\n")
    assert ": 'a b': unknown key" in message
    assert ": '': unknown key" in message
    assert ": 'x\\ty': unknown key" in message


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found$"):
        load_config(path, ENV)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, ENV)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_config(path, ENV)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"chanjing:\n  app_id: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(path, ENV)


def test_control_character(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + "  qps: 1\x00\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_config(path, ENV)


def test_recursive_alias(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "endpoints: &a [*a]\n")
    assert "recursive" in message


def test_warnings(tmp_path: Path) -> None:
    text = (
        BASE.replace("app_id: app-1", "app_id: a\n  base_url: http://vendor.internal\n")
        + ENDPOINTS.replace("https://hooks.example.com/chanjing", "http://hooks.example.com/c?t=1")
        + """\
  - name: local
    type: webhook
    url: http://localhost:8000/x
    secret: ${WH}
  - name: loop6
    type: webhook
    url: http://[::1]:8000/x
    secret: ${WH}
"""
    )
    warnings = load_text(
        tmp_path, text, {**ENV, "SLACK": "http://chat.example.org/hooks/TOPSECRET"}
    )
    assert load_text(tmp_path, text, {**ENV, "SLACK": "http://chat.example.org/hooks/TOPSECRET"})
    found = warnings.warnings()
    assert found == [
        "chanjing.base_url: plain http to non-loopback host vendor.internal; the secret key and "
        "access token travel unencrypted; use https",
        "endpoints[0].url: plain http to non-loopback host hooks.example.com; use https",
        "endpoints[1].url: plain http to non-loopback host chat.example.org; use https",
    ]
    assert not any("TOPSECRET" in w or "t=1" in w for w in found)


def test_qps_above_vendor_limit_warns(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE + "  qps: 20\n" + ENDPOINTS)
    assert config.warnings() == [
        "chanjing.qps: 20 is above the vendor's limit of 10 requests/second; "
        "expect rate-limit errors"
    ]


# --------------------------------------------------------------------------------------------
# The shipped example


def example_env() -> dict[str, str]:
    return {
        "CHANJING_APP_ID": "app-123",
        "CHANJING_SECRET_KEY": SECRET_KEY,
        "OPS_WEBHOOK_SECRET": "whsec_" + base64.b64encode(os.urandom(32)).decode(),
        "SLACK_WEBHOOK_URL": SLACK_URL,
    }


def test_example_config_loads() -> None:
    env = example_env()
    config = load_config(REPO / "config.example.yaml", env)
    assert config.chanjing.app_id == "app-123"
    assert config.endpoint_names() == ["ops", "team"]
    ops = config.endpoint("ops")
    assert isinstance(ops, WebhookEndpoint)
    assert ops.secret_values() == [env["OPS_WEBHOOK_SECRET"]]
    assert config.polling.give_up_after == 86400
    assert config.delivery.retry_schedule == [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800]
    assert config.warnings() == []


def test_example_config_without_env_names_every_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(REPO / "config.example.yaml", {})
    message = str(info.value)
    for name in example_env():
        assert f"environment variable {name} is not set" in message
