"""`check --online` (one token call, against the real simulator) and `check`'s warning for
two listeners on one port: what a newcomer's first `check` says in the first hour."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from notifier.cli import main
from notifier.polling.vendor import VendorError, VendorSettings, check_credentials
from notifier.service.http_server import ServerThread
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import free_port

APP_ID, SECRET = "first-hour-app", "sk-first-hour-0d9e8f7a6b5c"


@pytest.fixture
def vendor() -> Iterator[tuple[VendorSimulator, str]]:
    sim = VendorSimulator(SimConfig(app_id=APP_ID, secret_key=SECRET, qps=10, seed=3))
    with ServerThread(sim.make_app) as server:
        yield sim, server.url


def _config(tmp_path: Path, base_url: str, secret_key: str = SECRET, **extra: object) -> str:
    path = tmp_path / "config.yaml"
    config = {
        "chanjing": {"base_url": base_url, "app_id": APP_ID, "secret_key": secret_key},
        "state": {"path": str(tmp_path / "state.db")},
        "endpoints": [],
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_check_online_gets_one_token_with_the_configured_credentials(
    tmp_path: Path, vendor: tuple[VendorSimulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, url = vendor
    assert main(["check", "--online", "-c", _config(tmp_path, url)]) == 0
    out = capsys.readouterr().out
    assert f"online: OK — chanjing.base_url {url} issued a token" in out
    assert sim.stats()["tokens_issued"] == 1
    assert not (tmp_path / "state.db").exists()  # nothing kept, no state made


def test_check_online_says_the_credentials_were_refused_without_showing_them(
    tmp_path: Path, vendor: tuple[VendorSimulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, url = vendor
    wrong = "sk-wrong-4b3a2c1d0e9f"
    assert main(["check", "--online", "-c", _config(tmp_path, url, wrong)]) == 2
    captured = capsys.readouterr()
    assert "chanjing.app_id/chanjing.secret_key: refused by chanjing.base_url" in captured.err
    assert url in captured.err
    assert wrong not in captured.err + captured.out
    assert sim.stats()["tokens_issued"] == 0


def test_check_online_names_the_url_when_nothing_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["check", "--online", "-c", _config(tmp_path, url)]) == 1
    err = capsys.readouterr().err
    assert f"connection failed: ConnectError (chanjing.base_url {url})" in err
    assert SECRET not in err


def test_check_without_online_touches_no_network(
    tmp_path: Path, vendor: tuple[VendorSimulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, url = vendor
    assert main(["check", "-c", _config(tmp_path, url)]) == 0
    assert "online: " not in capsys.readouterr().out
    assert sim.stats()["tokens_issued"] == 0


def test_an_answer_that_is_not_the_vendors_names_the_base_url() -> None:
    """A proxy's 502 page: the error says where the daemon was pointed."""

    async def bad_gateway(_request: web.Request) -> web.Response:
        return web.Response(
            status=502, text="<html>502 Bad Gateway</html>", content_type="text/html"
        )

    def app() -> web.Application:
        application = web.Application()
        application.router.add_post("/{tail:.*}", bad_gateway)
        return application

    with ServerThread(app) as server, pytest.raises(VendorError) as info:
        url = server.url
        asyncio.run(check_credentials(VendorSettings(url, APP_ID, SECRET)))
    assert str(info.value) == f"HTTP 502 (text/html) (chanjing.base_url {url})"


@pytest.mark.parametrize(
    ("listeners", "warned"),
    [
        ({"intake": "127.0.0.1:9471", "metrics": "127.0.0.1:9471"}, True),
        ({"intake": "0.0.0.0:9471", "gateway": "127.0.0.1:9471"}, True),
        ({"metrics": "[::]:9471", "gateway": "127.0.0.1:9471"}, True),
        ({"intake": "127.0.0.1:9471", "metrics": "127.0.0.2:9471"}, False),
        ({"intake": "127.0.0.1:9471", "metrics": "127.0.0.1:9472"}, False),
    ],
)
def test_check_warns_when_two_listeners_share_a_port(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    listeners: dict[str, str],
    warned: bool,
) -> None:
    sections = {name: {"listen": listen} for name, listen in listeners.items()}
    if "intake" in sections:
        sections["intake"]["tokens"] = ["t-first-hour-0123456789"]  # type: ignore[assignment]
    path = _config(tmp_path, "http://127.0.0.1:9", **sections)
    assert main(["check", "-c", path]) == 0
    err = capsys.readouterr().err
    assert ("share a port" in err) is warned, err
    if warned:
        first, second = listeners
        assert f"{first}.listen: {listeners[first]} and {second}.listen" in err
