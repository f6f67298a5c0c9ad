"""Acceptance tests with the vendor's own SDK (``chanjingsdk`` 1.0.1) as the application: its
``ApiClient``/``AuthManager``, base URL pointed at the gateway of a real daemon process, the
simulator as the vendor and the verifying receiver as the webhook endpoint (issue 17, part 9).

The SDK is used as it ships: its token cache on disk, its reaction to 10400 (reload the
cache, raise ``PermissionError``), its retries. Only its own per-category sleeps between
calls are set to zero, so the tests do not wait on them.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chanjing.api
import chanjing.auth
import chanjing.services.lip_sync
import chanjing.services.tts
import chanjing.services.voice_clone
import pytest

from notifier.service.http_server import ServerThread
from notifier.store import Store
from notifier.tools.receiver import Receiver
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import (
    APP_ID,
    SECRET_KEY,
    TRACED,
    ArrivalLog,
    DaemonProcess,
    ReceiverServer,
    Simulator,
    Workspace,
    base_config,
    daemon_env,
    free_port,
    wait_until,
)
from tests.kit.gateway import BETA, serve_two_accounts, two_accounts
from tests.kit.logs import ACQUIRED, at

pytestmark = pytest.mark.slow

QPS = 10
CREATE = "/open/v1/video_lip_sync/create"
DETAIL = "/open/v1/video_lip_sync/detail"
#: Bounded waits, generous for a loaded two-core machine; none of them is a measurement.
WAIT = 30.0
#: How long the application loads the gateway beside the daemon's polls.
LOAD_SECONDS = 10.0
#: The SDK modules that copy ``chanjing.api.BASE_URL`` when they are imported.
SDK_MODULES = (
    chanjing.api,
    chanjing.services.lip_sync,
    chanjing.services.tts,
    chanjing.services.voice_clone,
)


# -- the SDK, pointed at a gateway ---------------------------------------------------------


@dataclass
class Sdk:
    """One application: an ``ApiClient`` with its ``AuthManager``, as the SDK's users make it."""

    base: str
    auth: chanjing.auth.AuthManager
    api: chanjing.api.ApiClient
    cache_dir: Path

    @property
    def token_file(self) -> Path:
        return self.cache_dir / "token.json"

    def token(self) -> str:
        token: str = self.auth.get_token(self.api)
        return token

    def detail(self, job_id: str, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.api.json_request(
            "GET",
            f"{self.base}{DETAIL}",
            params={"id": job_id},
            headers={"access_token": self.token()},
            **kwargs,
        )
        return answer

    def create(self, label: str | None = None, run_s: float = 1.0) -> str:
        headers = {"access_token": self.token()}
        if label is not None:
            headers["x-notifier-label"] = label
        answer = self.api.json_request(
            "POST",
            f"{self.base}{CREATE}",
            json={
                "video_file_id": "v-file",
                "audio_type": "audio",
                "audio_file_id": "a-file",
                "_sim": {"queue_s": 0, "run_s": run_s},
            },
            headers=headers,
        )
        job_id = answer["data"]
        assert isinstance(job_id, str), answer
        return job_id


SdkFactory = Callable[..., Sdk]


@pytest.fixture
def sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SdkFactory:
    """Points the SDK at a gateway URL (``chanjing.api.BASE_URL`` and the copies the service
    modules made of it) with its per-category sleeps off; ``monkeypatch`` puts the module
    constants back afterwards. Each call makes one application with its own token cache
    (the simulator fixture's account's credentials unless given)."""
    monkeypatch.setattr(
        chanjing.api.RateLimiter,
        "INTERVALS",
        dict.fromkeys(chanjing.api.RateLimiter.INTERVALS, 0.0),
    )
    made = 0

    def make(base: str, app_id: str = APP_ID, secret_key: str = SECRET_KEY) -> Sdk:
        nonlocal made
        for module in SDK_MODULES:
            monkeypatch.setattr(module, "BASE_URL", base)
        made += 1
        cache = tmp_path / f"sdk-cache-{made}"
        auth = chanjing.auth.AuthManager(app_id, secret_key, cache_dir=str(cache))
        return Sdk(base, auth, chanjing.api.ApiClient(auth), cache)

    return make


def test_the_sdk_fixture_restores_the_module_constants() -> None:
    # Runs after tests that used the fixture (file order): nothing points at a gateway now.
    assert {module.BASE_URL for module in SDK_MODULES} == {"https://open-api.chanjing.cc"}
    assert chanjing.api.RateLimiter.INTERVALS["lip_sync"] == 6.0


# -- a daemon with its gateway ---------------------------------------------------------------


@dataclass
class Node:
    ws: Workspace
    daemon: DaemonProcess
    url: str
    #: ``state.node`` when the test names it.
    daemon_node: str | None = None

    def wait_calls(self, count: int, outcome: str, path: str | None = None) -> int:
        """How many such lines there are once ``count`` have come (or the wait ran out): the
        daemon writes each line before its answer, but they reach us through a pipe."""
        self.daemon.wait_for_log(lambda _r: len(self.calls(outcome, path)) >= count, WAIT)
        return len(self.calls(outcome, path))

    def calls(self, outcome: str, path: str | None = None) -> list[dict[str, Any]]:
        """The daemon's ``gateway call`` log lines with this outcome (and path)."""
        return [
            r
            for r in self.daemon.records()
            if r.get("event") == "gateway call"
            and r.get("outcome") == outcome
            and (path is None or r.get("path") == path)
        ]


def gateway_config(
    tmp_path: Path, simulator: Simulator, receiver: ReceiverServer, state: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    port = free_port()
    config = base_config(
        tmp_path,
        simulator.url,
        receiver.url,
        state=state,
        gateway={"listen": f"127.0.0.1:{port}"},
    )
    config["endpoints"] = config["endpoints"][:1]  # ops: every event
    config["polling"].update(list_sweep=False)
    return config, f"http://127.0.0.1:{port}"


@pytest.fixture
def node_factory(
    tmp_path: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    backend: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Node]]:
    """A daemon with its gateway on a free port, on this test's state backend."""
    nodes: list[Node] = []
    if backend == "sqlite":
        state: dict[str, Any] = {"path": str(tmp_path / "state.db")}
    else:
        state = {"url": request.getfixturevalue("pg_url")}

    def start(**polling: Any) -> Node:
        config, url = gateway_config(tmp_path, simulator, receiver, state)
        config["polling"].update(polling)
        ws = Workspace(tmp_path, config, daemon_env(receiver.url))
        ws.write_config()
        ws.write_watch([])
        daemon = ws.start()
        daemon.wait_ready()
        node = Node(ws, daemon, url)
        nodes.append(node)
        return node

    yield start
    kill_all(nodes)


def webhook_ids(rec: Receiver) -> list[str]:
    return [r.payload["data"]["id"] for r in rec.accepted("/ops")]


def vendor_calls(simulator: Simulator, path: str) -> int:
    return int(simulator.sim.stats()["by_path"].get(path, 0))


# -- the tests -------------------------------------------------------------------------------


def test_the_sdks_token_survives_the_daemon_refreshing_its_vendor_token(
    node_factory: Callable[..., Node], simulator: Simulator, sdk: SdkFactory
) -> None:
    node = node_factory()
    app = sdk(node.url)
    job = simulator.sim.add_job(queue_s=0, run_s=3600)  # not watched: every call is forwarded
    assert app.detail(job)["data"]["id"] == job
    assert app.token().startswith("gw1.")  # a gateway token, never the vendor's
    cached = app.token_file.read_bytes()
    cached_at = app.token_file.stat().st_mtime_ns
    issued = simulator.sim.stats()["tokens_issued"]
    assert issued == 1  # the daemon's own; the SDK's fetch cost the vendor nothing

    for _ in range(3):
        simulator.sim.revoke_token()  # someone else took the account's token
        for _ in range(2):
            # Without the gateway: PermissionError ("AccessToken 验证失败") here.
            assert app.detail(job)["code"] == 0
    assert app.token_file.read_bytes() == cached
    assert app.token_file.stat().st_mtime_ns == cached_at
    stats = simulator.sim.stats()
    # One refresh per revocation, single-flight; the SDK never saw a 10400 (its token file
    # would have been rewritten by its refetch).
    assert stats["tokens_issued"] == issued + 3
    assert stats["codes"].get("10400", 0) == 3, stats["codes"]
    assert not node.calls("refused")
    assert node.daemon.stop() == 0


@pytest.mark.realtime
def test_sdk_calls_and_the_daemons_polls_stay_within_qps_and_none_fails(
    node_factory: Callable[..., Node],
    simulator: Simulator,
    receiver: ReceiverServer,
    sdk: SdkFactory,
) -> None:
    node = node_factory(min_interval="1s", max_interval="3s")
    jobs = [simulator.sim.add_job(f"busy{i:02d}", queue_s=1, run_s=600) for i in range(30)]
    node.ws.cli("watch", "add", *jobs)
    app = sdk(node.url)
    app.token()
    failures: list[BaseException] = []
    done = {"detail": 0, "create": 0}
    created: list[str] = []
    stop = threading.Event()

    def application() -> None:
        rounds = 0
        while not stop.is_set():
            for job in jobs[:20]:
                try:
                    app.detail(job)
                    done["detail"] += 1
                except Exception as exc:  # every failed SDK call counts
                    failures.append(exc)
            rounds += 1
            if len(created) < 3:
                try:
                    created.append(app.create(run_s=600))
                    done["create"] += 1
                except Exception as exc:
                    failures.append(exc)

    thread = threading.Thread(target=application, daemon=True)
    thread.start()
    stop.wait(LOAD_SECONDS)  # the load's duration: time is what is being measured here
    stop.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert failures == [], failures[:3]
    # It kept going, sharing the budget with 30 watches' polls: with gateway.share 0.5 its
    # calls may take half of qps ahead of them, so a quarter is a loose floor.
    assert done["detail"] >= LOAD_SECONDS * QPS / 4 and done["create"] == 3, done
    stats = simulator.sim.stats()
    assert stats["tokens_issued"] == 1
    assert "10400" not in stats["codes"], stats["codes"]
    assert not node.calls("limited")
    assert node.daemon.stop() == 0
    # Per-second counts as the vendor saw them; tracing slows the daemon past the limiter's
    # guard for the lag between a slot and the call's arrival (tests/conftest.py TRACED).
    if TRACED:
        return
    assert stats["max_per_second"] <= QPS, stats["per_second"]
    assert "40001" not in stats["codes"], stats["codes"]


def test_a_create_through_the_gateway_becomes_a_watch_and_its_webhook_arrives(
    node_factory: Callable[..., Node],
    simulator: Simulator,
    receiver: ReceiverServer,
    sdk: SdkFactory,
) -> None:
    node = node_factory()
    app = sdk(node.url)
    job = app.create(label="order=42, shop=eu")
    (watch,) = [w for w in node.ws.cli_json("watch", "list") if w["job_id"] == job]
    assert watch["labels"] == {"order": "42", "shop": "eu"}
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: job in webhook_ids(r), WAIT), rec.summary()
    (hook,) = [r for r in rec.accepted("/ops") if r.payload["data"]["id"] == job]
    assert hook.payload["type"] == "lip_sync.succeeded"
    assert hook.payload["data"]["labels"] == {"order": "42", "shop": "eu"}
    assert [r["code"] for r in node.calls("forwarded", CREATE)] == [0]
    assert node.daemon.stop() == 0


def test_absorbed_polls_cost_no_vendor_call(
    node_factory: Callable[..., Node],
    simulator: Simulator,
    receiver: ReceiverServer,
    sdk: SdkFactory,
) -> None:
    node = node_factory()
    job = simulator.sim.add_job(queue_s=0, run_s=0.5)
    node.ws.cli("watch", "add", job)
    rec = receiver.receiver
    assert rec.wait_for_blocking(lambda r: job in webhook_ids(r), WAIT), rec.summary()
    app = sdk(node.url)
    app.token()
    before = vendor_calls(simulator, DETAIL)
    answers = [app.detail(job) for _ in range(20)]
    # The SDK's own polling loop too: a finished job is answered at its first look.
    video_url, _duration = chanjing.services.lip_sync.LipSyncService(app.api)._poll(
        job, app.token()
    )
    assert vendor_calls(simulator, DETAIL) == before
    assert {a["code"] for a in answers} == {0}
    assert all(a["data"] == answers[0]["data"] for a in answers)
    assert answers[0]["data"]["status"] == 20 and answers[0]["data"]["video_url"] == video_url
    assert len({a["trace_id"] for a in answers}) == 20  # each a fresh envelope
    assert node.wait_calls(21, "absorbed", DETAIL) == 21
    assert node.daemon.stop() == 0


def test_kill_9_mid_forward_gives_the_sdk_an_error_within_its_timeout(
    node_factory: Callable[..., Node], simulator: Simulator, sdk: SdkFactory
) -> None:
    node = node_factory()
    app = sdk(node.url)
    app.token()
    job = simulator.sim.add_job(queue_s=0, run_s=3600)  # not watched: the daemon polls nothing
    # The vendor sits on each detail call for 4 s: past the kill, within the client's timeout
    # (and short, since the simulator's shutdown waits for the call it holds).
    slow = 4.0
    simulator.sim.set_faults(slow_rate=1.0, slow_seconds=slow)
    timeout = 10.0
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        call: Future[dict[str, Any]] = pool.submit(app.detail, job, timeout=timeout, max_retries=1)
        # In flight: the vendor has the forwarded call.
        assert wait_until(lambda: vendor_calls(simulator, DETAIL) == 1, WAIT)
        assert not call.done()
        node.daemon.kill9()
        with pytest.raises(ConnectionError):  # the SDK's own, around requests' error
            call.result(timeout + 5)
        elapsed = time.monotonic() - started
    # Well within its timeout, and before the vendor's answer was due: the kill ended it.
    assert elapsed < slow < timeout, elapsed
    assert node.daemon.popen.returncode == -signal.SIGKILL


# -- two nodes -------------------------------------------------------------------------------


@pytest.fixture
def arrivals() -> ArrivalLog:
    return ArrivalLog()


@pytest.fixture
def pair_simulator(arrivals: ArrivalLog) -> Iterator[Simulator]:
    """The conftest simulator, with each vendor call's arrival and sending process logged."""
    sim = VendorSimulator(SimConfig(app_id="test-app", secret_key=SECRET_KEY, qps=QPS, seed=7))
    with ServerThread(arrivals.wrap(sim.make_app)) as server:
        yield Simulator(sim, server)


def pg_node(
    where: Path,
    simulator: Simulator,
    receiver: ReceiverServer,
    pg_url: str,
    *,
    arrivals: ArrivalLog | None = None,
    accounts: bool = False,
) -> Node:
    """A node named after ``where`` on the PostgreSQL state, its gateway advertised to the
    others, its vendor calls in ``arrivals``; ``accounts``: alpha and beta (two_accounts)."""
    where.mkdir()
    state = {"url": pg_url, "node": where.name, "lease": "3s"}
    config, url = gateway_config(where, simulator, receiver, state)
    if accounts:
        config["accounts"] = two_accounts(config.pop("chanjing"))
    config["gateway"]["advertise"] = url
    ws = Workspace(where, config, daemon_env(receiver.url))
    ws.write_config()
    ws.write_watch([])
    daemon = ws.start()
    if arrivals is not None:
        arrivals.watch(daemon.popen.pid)
    daemon.wait_ready()
    return Node(ws, daemon, url, where.name)


def kill_all(nodes: Iterable[Node]) -> None:
    """What a test left running is killed (a failed test's nodes)."""
    for node in nodes:
        if node.daemon.popen.poll() is None:
            node.daemon.popen.kill()
            node.daemon.popen.wait(10)


@pytest.mark.realtime
def test_two_nodes_on_postgresql_with_the_application_on_the_standby(
    tmp_path: Path,
    pair_simulator: Simulator,
    receiver: ReceiverServer,
    arrivals: ArrivalLog,
    pg_url: str,
    sdk: SdkFactory,
) -> None:
    simulator = pair_simulator
    nodes: dict[str, Node] = {}
    try:
        for name in ("first", "second"):
            nodes[name] = pg_node(tmp_path / name, simulator, receiver, pg_url, arrivals=arrivals)
        holders = [
            name
            for name, node in nodes.items()
            if any(r.get("event") == ACQUIRED for r in node.daemon.records())
        ]
        assert len(holders) == 1, holders
        holder = nodes[holders[0]]
        standby = nodes["second" if holders[0] == "first" else "first"]

        app = sdk(standby.url)
        job = app.create(label="order=7")
        watches = standby.ws.cli_json("watch", "list")
        assert [w["labels"] for w in watches if w["job_id"] == job] == [{"order": "7"}]
        rec = receiver.receiver
        assert rec.wait_for_blocking(lambda r: job in webhook_ids(r), WAIT), rec.summary()
        answers = [app.detail(job) for _ in range(5)]
        assert {a["data"]["status"] for a in answers} == {20}
        running = simulator.sim.add_job(queue_s=0, run_s=3600)  # not watched: relayed
        assert app.detail(running)["data"]["id"] == running

        # The standby called the vendor for nothing: it relayed, or absorbed itself.
        assert arrivals.times(standby.daemon.popen.pid) == []
        assert len(arrivals.times(holder.daemon.popen.pid)) > 0
        assert [r["code"] for r in standby.calls("relayed", CREATE)] == [0]
        assert standby.wait_calls(1, "relayed", DETAIL) >= 1
        assert standby.wait_calls(1, "absorbed", DETAIL) >= 1
        assert [r["code"] for r in holder.calls("forwarded", CREATE)] == [0]
        assert not standby.calls("forwarded")

        # Failover: the holder dies; a call on the survivor waits for it to take the lease.
        holder.daemon.kill9()
        killed_at = time.time()
        started = time.monotonic()
        assert app.detail(running)["data"]["id"] == running
        waited = time.monotonic() - started
        assert waited < 10.0 + 2.0, waited  # gateway.max_wait, and the answer
        standby.daemon.wait_for_log(lambda r: r.get("event") == ACQUIRED, WAIT)
        acquired = [r for r in standby.daemon.records() if r.get("event") == ACQUIRED]
        assert len(acquired) == 1, standby.daemon.output
        assert acquired[0]["previous_holder"] == holder.daemon_node, acquired
        # The call was made before the survivor held the lease: it waited, and then worked.
        assert at(acquired[0]) > killed_at
        for _ in range(3):
            assert app.detail(running)["code"] == 0
        later = app.create()
        assert rec.wait_for_blocking(lambda r: later in webhook_ids(r), WAIT), rec.summary()
        assert standby.calls("forwarded", CREATE)
        # Its first vendor call came after it held the lease.
        assert min(arrivals.times(standby.daemon.popen.pid)) >= at(acquired[0])
        assert standby.daemon.stop() == 0
    finally:
        kill_all(nodes.values())


@pytest.fixture(name="accounts_simulator")
def accounts_simulator_fixture() -> Iterator[Simulator]:
    with serve_two_accounts() as simulator:
        yield simulator


def account_calls(
    node: Node, outcome: str, account: str, path: str, count: int = 0
) -> list[int | None]:
    """The vendor codes of a node's ``gateway call`` lines of this outcome, account and
    path, once there are ``count`` (or the wait ran out: the lines come through a pipe)."""

    def codes() -> list[int | None]:
        return [r["code"] for r in node.calls(outcome, path) if r.get("account") == account]

    node.daemon.wait_for_log(lambda _r: len(codes()) >= count, WAIT)
    return codes()


@pytest.mark.realtime
def test_two_nodes_two_accounts_each_call_reaches_the_vendor_through_its_accounts_holder(
    tmp_path: Path,
    accounts_simulator: Simulator,
    receiver: ReceiverServer,
    pg_url: str,
    sdk: SdkFactory,
) -> None:
    """Issue 22: with the accounts' leases spread over two nodes, an application of either
    account on either node is served by the node holding its account's lease: forwarded
    there (counted on that account by the vendor), relayed from the other."""
    simulator = accounts_simulator
    sim = simulator.sim
    nodes: dict[str, Node] = {}
    store = Store(pg_url)
    try:
        for name in ("first", "second"):
            nodes[name] = pg_node(tmp_path / name, simulator, receiver, pg_url, accounts=True)

        def holders() -> dict[str, str | None]:
            found = {lease: store.lease_holder(lease) for lease in ("vendor:alpha", "vendor:beta")}
            return {lease: None if held is None else held[0] for lease, held in found.items()}

        # The second node to start holds nothing at first: the first hands it one lease.
        assert wait_until(lambda: set(holders().values()) == set(nodes), WAIT), holders()
        held = holders()
        alpha_node, beta_node = nodes[str(held["vendor:alpha"])], nodes[str(held["vendor:beta"])]

        beta_app = sdk(alpha_node.url, BETA.app_id, BETA.secret_key)
        job = beta_app.create(label="order=9")
        running = sim.add_job(queue_s=0, run_s=3600, account=BETA.app_id)
        for _ in range(3):
            assert beta_app.detail(running)["data"]["id"] == running
        alpha_app = sdk(beta_node.url)
        mine = sim.add_job(queue_s=0, run_s=3600)
        assert alpha_app.detail(mine)["data"]["id"] == mine
        # The beta job is not alpha's: the vendor says so, to alpha's token.
        with pytest.raises(RuntimeError, match="code=40000"):
            alpha_app.detail(running)

        # Beta's calls on alpha's holder were relayed to beta's, which made them as beta.
        assert account_calls(alpha_node, "relayed", "beta", CREATE, 1) == [0]
        assert account_calls(beta_node, "forwarded", "beta", CREATE, 1) == [0]
        assert account_calls(alpha_node, "relayed", "beta", DETAIL, 3) == [0, 0, 0]
        assert account_calls(beta_node, "forwarded", "beta", DETAIL, 3) == [0, 0, 0]
        # And the other way round for alpha's.
        assert account_calls(beta_node, "relayed", "alpha", DETAIL, 2) == [0, 40000]
        assert account_calls(alpha_node, "forwarded", "alpha", DETAIL, 2) == [0, 40000]
        # Neither node made a call as the account whose lease the other holds.
        assert account_calls(alpha_node, "forwarded", "beta", DETAIL) == []
        assert account_calls(beta_node, "forwarded", "alpha", DETAIL) == []
        # The vendor counted each on its own account.
        accounts = sim.stats()["accounts"]
        assert accounts[BETA.app_id]["by_path"].get(CREATE) == 1
        assert accounts[APP_ID]["by_path"].get(CREATE) is None
        assert accounts[APP_ID]["tokens_issued"] == accounts[BETA.app_id]["tokens_issued"] == 1
        # The create is beta's watch, wherever the application called.
        watch = store.get_watch(job, account="beta")
        assert watch is not None and watch.labels == {"order": "9"}
        assert store.get_watch(job, account="alpha") is None
        # Polled as beta by beta's holder: its webhook arrives.
        rec = receiver.receiver
        assert rec.wait_for_blocking(lambda r: job in webhook_ids(r), WAIT), rec.summary()
        for node in nodes.values():
            assert node.daemon.stop() == 0
    finally:
        store.close()
        kill_all(nodes.values())
