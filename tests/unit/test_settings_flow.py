"""One settings flow (issue 20, item 2): the config's pydantic sections stop at the service;
every part below takes a frozen dataclass of its own, built in one place."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import notifier
from notifier.config import StateConfig, parse_config
from notifier.delivery.senders import SENDERS
from notifier.polling.ratelimit import RateLimiter
from notifier.polling.vendor import VendorClient, VendorSettings
from notifier.service.clients import VendorSlot
from notifier.service.routing import subscriptions
from notifier.service.settings import Settings, build
from notifier.store import (
    DEFAULT_STATE_PATH,
    StateSettings,
    Store,
    describe_state,
    open_store,
)

ROOT = Path(notifier.__file__).parent
#: The parts below the service. (The store reads no config section either: see the last
#: tests, on ``StateSettings``.)
BELOW_SERVICE = ("polling", "delivery", "gateway", "intake")
#: What ``notifier.config`` also offers that is not a section: the YAML reader and problems.
NOT_SECTIONS = {"ProblemsError", "dotted", "kind", "read_yaml_file", "show"}


def section_imports(path: Path) -> list[str]:
    """Imports of the config's sections (the module, or a model from the package)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("notifier.config.sections"):
                found.append(node.module)
            elif node.module == "notifier.config":
                found += [a.name for a in node.names if a.name not in NOT_SECTIONS]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("notifier.config")]
    return found


def test_no_part_below_the_service_reads_a_config_section() -> None:
    wrong = {
        str(path.relative_to(ROOT)): names
        for part in BELOW_SERVICE
        for path in sorted((ROOT / part).rglob("*.py"))
        if (names := section_imports(path))
    }
    assert wrong == {}


def test_the_check_catches_a_section_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text(
        "from notifier.config.sections import MIN_LEASE\nfrom notifier.config import Config\n"
    )
    assert section_imports(bad) == ["notifier.config.sections", "Config"]


CONFIG = {
    "chanjing": {"app_id": "app", "secret_key": "sk-very-secret-1", "qps": 7},
    "state": {"lease": "20s"},
    "polling": {"min_interval": "4s", "list_sweep": False},
    "delivery": {"concurrency": 3, "timeout": "9s"},
    "watch": {"discover": {"since": "start", "labels": {"team": "a"}}},
    "metrics": {"listen": "127.0.0.1:9464"},
    "endpoints": [
        {
            "name": "ops",
            "type": "webhook",
            "url": "http://127.0.0.1:1/ops",
            "secret": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        },
        {
            "name": "team",
            "type": "slack",
            "url": "https://hooks.slack.com/services/T0/B0/very-secret-path",
            "events": ["lip_sync.failed"],
        },
    ],
}


def test_build_gives_each_part_frozen_settings_of_its_own() -> None:
    settings = build(parse_config(CONFIG))
    assert isinstance(settings, Settings)
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(value, "x", 1)  # noqa: B010
    (lane,) = settings.lanes  # the chanjing section: one account, named default
    assert (lane.name, settings.default_account) == ("default", "default")
    assert lane.limiter.qps == 7
    assert lane.lease.ttl == 20.0
    assert settings.sweep_every == 4.0
    assert lane.poller.list_sweep is False
    assert lane.poller.discovery is not None and lane.poller.discovery.since is None
    assert settings.metrics.key == "metrics.listen"
    assert settings.metrics.address == ("127.0.0.1", 9464)
    ops, team = settings.dispatcher.endpoints
    assert (ops.type, ops.concurrency, ops.timeout) == ("webhook", 3, 9.0)
    # A Slack URL is one sender per URL, one attempt at a time: the table says so.
    assert SENDERS[team.type].concurrency(team) == 1
    # One account and no endpoint's accounts: the alerts and the lane route alike.
    assert [r[:2] for r in settings.alerts.routes] == list(lane.poller.subscriptions)
    assert settings.alerts.routes[1] == ("team", ("lip_sync.failed",), None)
    assert settings.alerts.account_keys == (("default", "chanjing"),)


def test_settings_repr_shows_no_secret() -> None:
    text = repr(build(parse_config(CONFIG)))
    for secret in ("sk-very-secret-1", "very-secret-path", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"):
        assert secret not in text


async def test_the_vendor_client_is_built_and_rebuilt_from_its_account_settings(
    tmp_path: Path,
) -> None:
    """One account is one settings object: the client keeps the very object it was built
    from, and a reload hands the slot a new object, never values picked out of it."""
    settings = build(parse_config(CONFIG))
    (lane,) = settings.lanes
    account, limiter = lane.vendor, RateLimiter(lane.limiter)
    shown = "base_url='https://open-api.chanjing.cc', app_id='app', account='default'"
    assert repr(account) == f"VendorSettings({shown})"
    with Store(tmp_path / "state.db") as store:
        made: list[VendorClient] = []

        def make(settings: VendorSettings) -> VendorClient:
            made.append(VendorClient(settings, limiter=limiter, store=store))
            return made[-1]

        slot = VendorSlot(make, account)
        assert slot.client.settings is account
        assert "sk-very-secret-1" in slot.client.secrets()  # what the log redactor is given
        slot.configure(dataclasses.replace(account))  # the same account: the same client
        assert len(made) == 1
        other = dataclasses.replace(account, secret_key="sk-other-2")
        slot.configure(other)
        assert slot.client.settings is other and len(made) == 2
        for client in made:
            await client.aclose()


def test_the_cli_routes_replays_with_the_daemons_subscriptions() -> None:
    config = parse_config(CONFIG)
    assert subscriptions(config) == build(config).lanes[0].poller.subscriptions


#: Where the parts below the service are built (the daemon, its client slots, the CLI).
BUILDERS = ("service", "cli")
#: The one place that reads the config to build the settings.
SETTINGS_MODULE = ROOT / "service" / "settings.py"


def component_classes() -> set[str]:
    """The classes defined in the stages below the service: the parts that take settings."""
    return {
        node.name
        for part in BELOW_SERVICE
        for path in sorted((ROOT / part).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    }


def chain(node: ast.AST) -> list[str]:
    """``a.b.c`` as ["a", "b", "c"] (empty when it is not a plain attribute chain)."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.insert(0, node.attr)
        node = node.value
    return [node.id, *names] if isinstance(node, ast.Name) else []


def handed_config(path: Path, classes: set[str]) -> list[str]:
    """Constructor calls of a part that hand it the config (a pydantic section, or a value
    read from one) or a value picked out of a settings bundle (``settings.poller.polling``)
    instead of the part's own settings object."""
    wrong = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        if node.func.id not in classes:
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            for sub in ast.walk(arg):
                names = chain(sub)
                config = "config" in names[:2]
                picked = names[:1] == ["settings"] and len(names) > 2
                if config or picked:
                    wrong.append(f"{node.lineno}: {node.func.id}(... {'.'.join(names)} ...)")
                    break  # one line per argument, not one per link of its chain
    return wrong


def test_parts_are_built_from_their_settings_not_from_config_sections() -> None:
    classes = component_classes()
    wrong = {
        str(path.relative_to(ROOT)): found
        for part in BUILDERS
        for path in sorted((ROOT / part).rglob("*.py"))
        if path != SETTINGS_MODULE and (found := handed_config(path, classes))
    }
    assert wrong == {}


def test_the_check_catches_a_part_handed_config(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text(
        "a = RateLimiter(settings.limiter.qps)\n"
        "b = LeaseKeeper(gate, node, settings.lease, sole=config.state.url is None)\n"
        "c = Poller(store, LimiterSettings(self.config.chanjing.qps))\n"
        "d = RateLimiter(settings.limiter)\n"
    )
    found = handed_config(bad, {"RateLimiter", "LeaseKeeper", "Poller"})
    assert [line.split(":")[0] for line in found] == ["1", "2", "3"]


def config_imports(path: Path) -> list[str]:
    """Any import of ``notifier.config`` (type-only ones too: the store takes no section)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("notifier.config"):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("notifier.config")]
    return found


def test_the_store_reads_no_config_section() -> None:
    wrong = {
        str(path.relative_to(ROOT)): names
        for path in sorted((ROOT / "store").rglob("*.py"))
        if (names := config_imports(path))
    }
    assert wrong == {}


def test_the_state_is_opened_from_its_settings_which_never_show_a_password(
    tmp_path: Path,
) -> None:
    """The daemon and the CLI open the state ``build`` names; the config's default file is
    the store's (the store cannot read it from the config), and a database's password stays
    out of every repr: settings may be logged or shown in a traceback."""
    assert StateConfig().path == DEFAULT_STATE_PATH
    assert build(parse_config(CONFIG)).state == StateSettings(DEFAULT_STATE_PATH)
    url = "postgresql://notifier:pw-7f3e9a1c@db.internal:5433/chanjing"
    shared = build(parse_config({**CONFIG, "state": {"url": url}})).state
    assert shared == StateSettings(url=url) and shared.shared
    assert "pw-7f3e9a1c" not in repr(shared)
    assert describe_state(shared) == "postgresql://notifier@db.internal:5433/chanjing"
    local = StateSettings(tmp_path / "state.db")
    assert not local.shared and describe_state(local) == str(tmp_path / "state.db")
    with open_store(local) as store:
        assert store.watch_counts()["active"] == 0
    assert (tmp_path / "state.db").exists()
