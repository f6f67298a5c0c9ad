"""The vendor client against the real simulator (and a few hand-written vendors) on 127.0.0.1.

Everything runs in the test's own event loop: the servers are :class:`AppServer` instances,
time on the vendor side is a fake clock the test moves by hand, and the client reads the same
clock for token expiry. Nothing waits on a sleep; the only real-time waits are the limiter's
short pauses and the one deliberately slow answer of the timeout test.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from notifier.models import JobDetail
from notifier.polling.ratelimit import LimiterSettings, RateLimiter
from notifier.polling.vendor import (
    CredentialsRejected,
    UnknownJob,
    VendorClient,
    VendorError,
)
from notifier.service.http_server import AppServer
from notifier.store import Store
from notifier.tools.simulator import SimConfig, VendorSimulator
from tests.kit import SECRET_KEY, T0, FakeClock
from tests.kit.vendor import vendor_client

APP_ID = "test-app"
#: The documented refresh margin (5 minutes), spelled out rather than imported from the client.
TOKEN_REFRESH_MARGIN = 300
DETAIL_FIELDS = ("id", "status", "progress", "msg", "video_url", "preview_url", "duration")


def fast_limiter(qps: int = 1000, cooldown: float = 0.1) -> RateLimiter:
    """A real limiter with a budget big enough that spacing never slows a test down."""
    return RateLimiter(LimiterSettings(qps), cooldown=cooldown)


def stored_tokens(path: Path) -> list[tuple[str, str, float]]:
    """(account, access_token, expire_at) rows of the state file's token table."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT account, access_token, expire_at FROM vendor_token").fetchall()
    return [(str(a), str(t), float(e)) for a, t, e in rows]


def assert_clean(exc: BaseException, secrets: list[str]) -> None:
    """Neither the secret_key nor any access token shows in what the error says."""
    text = f"{exc}\n{exc!r}\n{exc.args!r}"
    for secret in secrets:
        assert secret, "an empty secret would match anything"
        assert secret not in text, f"{secret!r} leaked into {type(exc).__name__}: {text}"


class Harness:
    """Clients, stores and limiters made by a test, all closed at the end."""

    def __init__(self, tmp_path: Path, clock: FakeClock) -> None:
        self.tmp_path = tmp_path
        self.clock = clock
        self.state_path = tmp_path / "s.db"
        self._clients: list[VendorClient] = []
        self._stores: list[Store] = []

    def store(self) -> Store:
        store = Store(self.state_path)
        self._stores.append(store)
        return store

    def client(
        self,
        base_url: str,
        *,
        limiter: RateLimiter | None = None,
        store: Store | None = None,
        timeout: float = 10.0,
        secret_key: str = SECRET_KEY,
    ) -> VendorClient:
        client = vendor_client(
            base_url,
            store if store is not None else self.store(),
            limiter if limiter is not None else fast_limiter(),
            secret_key=secret_key,
            timeout=timeout,
            clock=self.clock,
        )
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()
        for store in self._stores:
            store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def harness(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Harness]:
    h = Harness(tmp_path, clock)
    yield h
    await h.close()


class Vendor:
    def __init__(self, sim: VendorSimulator, server: AppServer) -> None:
        self.sim = sim
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    def stats(self) -> dict[str, Any]:
        return self.sim.stats()


def make_simulator(clock: FakeClock, **config: Any) -> VendorSimulator:
    settings: dict[str, Any] = {"app_id": APP_ID, "secret_key": SECRET_KEY, "qps": 0, "seed": 7}
    settings.update(config)
    return VendorSimulator(SimConfig(**settings), clock=clock)


@pytest.fixture
async def vendor(clock: FakeClock) -> AsyncIterator[Vendor]:
    """The simulator with no QPS limit (the client's own limiter is what is under test)."""
    sim = make_simulator(clock)
    async with AppServer(sim.make_app()) as server:
        yield Vendor(sim, server)


# --------------------------------------------------------------------------- hand-written vendors

Answer = Callable[[int], web.StreamResponse]


def envelope(code: int, msg: str = "", data: Any = None) -> web.Response:
    body = {"trace_id": "0" * 32, "code": code, "msg": msg, "data": data}
    return web.json_response(body)


def detail_data(job_id: str = "job-1", status: int = 20) -> dict[str, Any]:
    return {
        "id": job_id,
        "status": status,
        "progress": 100,
        "msg": "success",
        "video_url": f"https://cdn.example.invalid/{job_id}.mp4",
        "preview_url": "",
        "duration": 12_000,
        "create_time": int(T0),
    }


class FakeVendor:
    """A scripted vendor: ``detail(n)`` / ``token(n)`` build the n-th answer (1-based)."""

    def __init__(self, detail: Answer, token: Answer | None = None) -> None:
        self._detail = detail
        self._token = token
        self.token_calls = 0
        self.detail_calls = 0
        self.issued: list[str] = []
        self.tokens_seen: list[str | None] = []
        self.url = ""

    def default_token(self, n: int) -> web.Response:
        token = f"fake-access-token-{n:04d}-c0ffee"
        self.issued.append(token)
        return envelope(0, "success", {"access_token": token, "expire_in": int(T0) + 86_400})

    async def handle_token(self, request: web.Request) -> web.StreamResponse:
        self.token_calls += 1
        if self._token is None:
            return self.default_token(self.token_calls)
        return self._token(self.token_calls)

    async def handle_detail(self, request: web.Request) -> web.StreamResponse:
        self.detail_calls += 1
        self.tokens_seen.append(request.headers.get("access_token"))
        return self._detail(self.detail_calls)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/open/v1/access_token", self.handle_token)
        app.router.add_get("/open/v1/video_lip_sync/detail", self.handle_detail)
        return app


@asynccontextmanager
async def fake_vendor(detail: Answer, token: Answer | None = None) -> AsyncIterator[FakeVendor]:
    fake = FakeVendor(detail, token)
    async with AppServer(fake.make_app()) as server:
        fake.url = server.url
        yield fake


# --------------------------------------------------------------------------- token


async def test_token_fetched_once_and_cached_with_the_vendor_expiry(
    vendor: Vendor, harness: Harness, clock: FakeClock
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    client = harness.client(vendor.url)

    for _ in range(3):
        assert (await client.detail("job-1")).status == 20

    stats = vendor.stats()
    assert stats["tokens_issued"] == 1
    assert stats["by_path"]["/open/v1/access_token"] == 1
    assert client.token_refreshes == 1
    rows = stored_tokens(harness.state_path)
    assert len(rows) == 1
    _, token, expire_at = rows[0]
    # expire_in is a unix timestamp (now + ttl), kept as such, not added to now again.
    assert expire_at == int(T0 + vendor.sim.config.token_ttl)
    assert token in client.secrets()
    assert SECRET_KEY in client.secrets()


async def test_a_second_client_on_the_same_state_file_reuses_the_token(
    vendor: Vendor, harness: Harness
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    first = harness.client(vendor.url)
    await first.detail("job-1")
    await first.aclose()

    # A restarted daemon or a CLI command: a new store connection, a new client.
    second = harness.client(vendor.url, store=harness.store())
    assert (await second.detail("job-1")).status == 20

    stats = vendor.stats()
    assert stats["tokens_issued"] == 1
    assert stats["codes"].get("10400", 0) == 0
    assert second.token_refreshes == 0


async def test_concurrent_calls_on_a_fresh_client_issue_exactly_one_token(
    vendor: Vendor, harness: Harness
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    client = harness.client(vendor.url)

    details = await asyncio.gather(*(client.detail("job-1") for _ in range(20)))

    assert all(d.status == 20 for d in details)
    stats = vendor.stats()
    assert stats["tokens_issued"] == 1
    assert stats["codes"] == {"0": 21}


async def test_concurrent_calls_after_a_revocation_refresh_only_once(
    vendor: Vendor, harness: Harness
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    client = harness.client(vendor.url)
    await client.detail("job-1")
    vendor.sim.revoke_token()

    details = await asyncio.gather(*(client.detail("job-1") for _ in range(20)))

    assert all(d.status == 20 for d in details)
    assert vendor.stats()["tokens_issued"] == 2


async def test_token_refreshed_within_the_margin_before_expiry(
    clock: FakeClock, harness: Harness
) -> None:
    sim = make_simulator(clock, token_ttl=600)
    sim.add_job("job-1", queue_s=0, run_s=0)
    async with AppServer(sim.make_app()) as server:
        client = harness.client(server.url)
        await client.detail("job-1")
        expire_at = int(T0 + 600)
        assert stored_tokens(harness.state_path)[0][2] == expire_at

        # Just outside the margin: the cached token is still used.
        clock.now = expire_at - TOKEN_REFRESH_MARGIN - 1
        await client.detail("job-1")
        assert sim.stats()["tokens_issued"] == 1

        # Inside the margin: a new token before the vendor would reject the old one.
        clock.now = expire_at - TOKEN_REFRESH_MARGIN + 1
        await client.detail("job-1")
        stats = sim.stats()
        assert stats["tokens_issued"] == 2
        assert stats["codes"].get("10400", 0) == 0
        [(_, token, new_expiry)] = stored_tokens(harness.state_path)
        assert new_expiry == int(clock.now + 600)
        assert token in client.secrets()


async def test_a_near_expiry_token_in_the_store_is_not_reused(
    vendor: Vendor, harness: Harness, clock: FakeClock
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    first = harness.client(vendor.url)
    await first.detail("job-1")
    [(account, token, _)] = stored_tokens(harness.state_path)

    # Someone left a token that expires in less than the margin.
    store = harness.store()
    store.save_token(account, token, clock() + TOKEN_REFRESH_MARGIN / 2)
    second = harness.client(vendor.url, store=store)
    await second.detail("job-1")

    assert vendor.stats()["tokens_issued"] == 2
    assert second.token_refreshes == 1
    [(_, new_token, new_expiry)] = stored_tokens(harness.state_path)
    assert new_token != token
    assert new_expiry > clock() + TOKEN_REFRESH_MARGIN


async def test_expire_in_given_as_a_duration_is_read_as_seconds_from_now(
    harness: Harness, clock: FakeClock
) -> None:
    def token(n: int) -> web.Response:
        return envelope(0, "success", {"access_token": f"tok-duration-{n}", "expire_in": 7200})

    async with fake_vendor(lambda n: envelope(0, "success", detail_data()), token) as fake:
        client = harness.client(fake.url)
        await client.detail("job-1")
        await client.detail("job-1")
    assert fake.token_calls == 1
    [(_, _, expire_at)] = stored_tokens(harness.state_path)
    assert expire_at == clock() + 7200


async def test_revoked_token_is_refreshed_once_and_the_call_succeeds(
    vendor: Vendor, harness: Harness
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    client = harness.client(vendor.url)
    await client.detail("job-1")
    [(_, old_token, _)] = stored_tokens(harness.state_path)

    vendor.sim.revoke_token()
    assert (await client.detail("job-1")).status == 20

    stats = vendor.stats()
    assert stats["tokens_issued"] == 2
    assert stats["codes"]["10400"] == 1
    assert client.token_refreshes == 2
    [(_, new_token, _)] = stored_tokens(harness.state_path)
    assert new_token != old_token
    assert old_token not in client.secrets()


async def test_a_token_rejected_every_time_gives_up_after_one_refresh(harness: Harness) -> None:
    async with fake_vendor(lambda n: envelope(10400, "access token invalid or expired")) as fake:
        client = harness.client(fake.url)
        with pytest.raises(VendorError) as info:
            await client.detail("job-1")
    assert "10400" in str(info.value)
    assert fake.token_calls == 2
    assert fake.detail_calls == 2
    assert fake.tokens_seen == fake.issued  # the retry used the fresh token
    assert_clean(info.value, [SECRET_KEY, *fake.issued])


async def test_wrong_credentials_raise_credentials_rejected(
    vendor: Vendor, harness: Harness
) -> None:
    wrong = "sk-wrong-0123456789abcdef"
    client = harness.client(vendor.url, secret_key=wrong)
    with pytest.raises(CredentialsRejected) as info:
        await client.detail("job-1")
    assert "secret_key is incorrect" in str(info.value)
    assert isinstance(info.value, VendorError)
    assert stored_tokens(harness.state_path) == []
    assert_clean(info.value, [wrong, SECRET_KEY])


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (lambda: envelope(50000, "internal server error"), "code 50000"),
        (lambda: envelope(0, "success", {"expire_in": int(T0) + 86_400}), "no access_token"),
        (lambda: envelope(0, "success", {"access_token": "", "expire_in": 1}), "empty"),
        (lambda: envelope(0, "success", {"access_token": "tok-x", "expire_in": "soon"}), "expire"),
        (lambda: envelope(0, "success", {"access_token": "tok-x"}), "expire_in"),
        (lambda: envelope(0, "success", "tok-x"), "no access_token"),
        (
            lambda: web.Response(status=502, text="<html>bad</html>", content_type="text/html"),
            "502",
        ),
    ],
)
async def test_unusable_token_answers_raise_vendor_error_and_cache_nothing(
    harness: Harness, answer: Callable[[], web.Response], fragment: str
) -> None:
    async with fake_vendor(lambda n: envelope(0, "", detail_data()), lambda n: answer()) as fake:
        client = harness.client(fake.url)
        with pytest.raises(VendorError) as info:
            await client.detail("job-1")
    assert not isinstance(info.value, CredentialsRejected)
    assert fragment in str(info.value)
    assert fake.token_calls == 1
    assert fake.detail_calls == 0
    assert stored_tokens(harness.state_path) == []
    assert_clean(info.value, [SECRET_KEY])


# --------------------------------------------------------------------------- detail


def as_detail(row: dict[str, Any]) -> JobDetail:
    return JobDetail(**{k: row[k] for k in (*DETAIL_FIELDS, "create_time")})


async def test_detail_is_typed_for_every_status(
    vendor: Vendor, harness: Harness, clock: FakeClock
) -> None:
    sim = vendor.sim
    sim.add_job("job-ok", queue_s=10, run_s=20, outcome=20, create_time=1_699_999_000)
    sim.add_job("job-bad", queue_s=10, run_s=20, outcome=30, msg="insufficient balance")
    client = harness.client(vendor.url)

    def served(job_id: str) -> JobDetail:
        return as_detail(next(j for j in sim.jobs() if j["id"] == job_id))

    queued = await client.detail("job-ok")
    assert queued == served("job-ok")
    assert (queued.status, queued.progress, queued.video_url) == (0, 0, "")
    assert queued.create_time == 1_699_999_000

    clock.advance(15)
    generating = await client.detail("job-ok")
    assert generating == served("job-ok")
    assert generating.status == 10
    assert 0 < generating.progress < 100
    assert not generating.terminal

    clock.advance(20)
    success = await client.detail("job-ok")
    assert success == served("job-ok")
    assert (success.status, success.progress) == (20, 100)
    assert success.video_url.endswith("job-ok.mp4")
    assert success.duration > 0
    assert success.terminal

    failed = await client.detail("job-bad")
    assert failed == served("job-bad")
    assert (failed.status, failed.msg, failed.video_url) == (30, "insufficient balance", "")
    assert failed.create_time == int(T0)
    assert failed.terminal
    assert vendor.stats()["tokens_issued"] == 1


async def test_unknown_id_raises_unknown_job_with_the_vendor_message(
    vendor: Vendor, harness: Harness
) -> None:
    client = harness.client(vendor.url)
    with pytest.raises(UnknownJob, match="record not found") as info:
        await client.detail("no-such-job")
    assert vendor.stats()["codes"]["40000"] == 1
    assert_clean(info.value, client.secrets())


@pytest.mark.parametrize(
    ("faults", "fragment"),
    [
        ({"fault_50000": 1.0}, "code 50000"),
        ({"fault_51000": 1.0}, "code 51000"),
        ({"fault_html": 1.0}, "HTTP 502"),
    ],
)
async def test_vendor_faults_raise_vendor_error(
    vendor: Vendor, harness: Harness, faults: dict[str, float], fragment: str
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    client = harness.client(vendor.url)
    await client.token()
    secrets = client.secrets()

    vendor.sim.set_faults(**faults)
    with pytest.raises(VendorError) as info:
        await client.detail("job-1")
    assert fragment in str(info.value)
    assert_clean(info.value, secrets)

    # The fault passes; the same token still works (a fault is not a token problem).
    vendor.sim.set_faults(**dict.fromkeys(faults, 0.0))
    assert (await client.detail("job-1")).status == 20
    assert vendor.stats()["tokens_issued"] == 1


def raw(body: str, content_type: str = "application/json", status: int = 200) -> web.Response:
    return web.Response(status=status, body=body.encode(), content_type=content_type)


HUGE = "1" + "0" * 400  # valid JSON; too big for a float
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (lambda: raw(BAD_GATEWAY, "text/html", 502), "HTTP 502"),
        (lambda: raw("not found", "text/plain", 404), "HTTP 404"),
        (lambda: raw("<html><body>maintenance</body></html>", "text/html"), "not JSON"),
        (lambda: raw("OK", "text/plain"), "not JSON"),
        (lambda: raw('{"code": 0, "data": '), "not JSON"),
        (lambda: raw("[" * 100_000), "not JSON"),
        (lambda: raw('[{"code": 0}]'), "not a JSON object"),
        (lambda: raw('"success"'), "not a JSON object"),
        (lambda: raw('{"msg": "success", "data": {}}'), "no integer code"),
        (lambda: raw('{"code": "0", "msg": "success"}'), "no integer code"),
        (lambda: raw('{"code": true, "msg": "success"}'), "no integer code"),
        (lambda: raw('{"code": 0.0, "msg": "success"}'), "no integer code"),
        (lambda: raw('{"code": null, "msg": "success"}'), "no integer code"),
        (lambda: envelope(12345, "something new"), "code 12345"),
        (lambda: envelope(0, "success", None), "unusable detail answer"),
        (lambda: envelope(0, "success", [detail_data()]), "unusable detail answer"),
        (lambda: envelope(0, "success", {**detail_data(), "status": 40}), "unknown job status"),
        (lambda: envelope(0, "success", {**detail_data(), "status": "done"}), "not a number"),
        (lambda: raw('{"code": 0, "data": {"status": ' + HUGE + "}}"), "unusable detail answer"),
    ],
)
async def test_malformed_detail_answers_raise_vendor_error(
    harness: Harness, answer: Callable[[], web.Response], fragment: str
) -> None:
    async with fake_vendor(lambda n: answer()) as fake:
        client = harness.client(fake.url)
        with pytest.raises(VendorError) as info:
            await client.detail("job-1")
    assert fragment in str(info.value)
    assert fake.detail_calls == 1  # a bad answer is not retried here
    assert fake.token_calls == 1
    assert_clean(info.value, [SECRET_KEY, *fake.issued])


async def test_slow_answer_beyond_the_timeout_raises_timed_out(
    vendor: Vendor, harness: Harness
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    store = harness.store()
    # Take the token with a patient client so only the slow call meets the short timeout.
    await harness.client(vendor.url, store=store).token()
    client = harness.client(vendor.url, store=store, timeout=0.2)
    secrets = [SECRET_KEY, *client.secrets()]

    vendor.sim.set_faults(slow_rate=1.0, slow_seconds=1.0)
    with pytest.raises(VendorError, match="timed out") as info:
        await client.detail("job-1")
    assert_clean(info.value, [*secrets, *(t for _, t, _ in stored_tokens(harness.state_path))])


async def test_connection_refused_raises_vendor_error(harness: Harness) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    limiter = fast_limiter()
    client = harness.client(f"http://127.0.0.1:{port}", limiter=limiter)
    with pytest.raises(VendorError, match="connection failed") as info:
        await client.detail("job-1")
    assert limiter.calls == 1  # the token call, which was budgeted even though it failed
    assert_clean(info.value, [SECRET_KEY])


class RecordingLimiter(RateLimiter):
    """The real limiter, noting when the client reported each 40001."""

    def __init__(self, qps: int, *, cooldown: float) -> None:
        super().__init__(qps, cooldown=cooldown)
        self.throttled_at: list[float] = []

    def throttle(self) -> None:
        self.throttled_at.append(time.monotonic())
        super().throttle()


async def test_40001_pauses_everyone_and_the_call_succeeds_after(harness: Harness) -> None:
    limiter = RecordingLimiter(LimiterSettings(2), cooldown=1.0)
    arrivals: list[float] = []

    async def others_waiting() -> None:
        # Answer the first call only once the other three callers wait at the limiter (one
        # sleeping towards its slot at +0.5 s, computed before the pause existed).
        for _ in range(500):
            if limiter.waiting >= 3:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the other callers never reached the limiter")

    async def detail(request: web.Request) -> web.Response:
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            await others_waiting()
            return envelope(40001, "request too frequent, please retry later")
        return envelope(0, "success", detail_data())

    app = web.Application()
    app.router.add_post("/open/v1/access_token", FakeVendor(lambda n: envelope(0)).handle_token)
    app.router.add_get("/open/v1/video_lip_sync/detail", detail)
    async with AppServer(app) as server:
        client = harness.client(server.url, limiter=limiter)
        results = await asyncio.gather(*(client.detail("job-1") for _ in range(4)))
    assert results == [JobDetail(**detail_data())] * 4
    (throttled_at,) = limiter.throttled_at
    # Everyone, including the caller already sleeping towards its slot, waited out the pause.
    later = [t for t in arrivals if t > throttled_at]
    assert len(later) == 4  # the three others and the retry of the first
    assert min(later) >= throttled_at + 1.0 - 0.01, [t - throttled_at for t in later]
    assert limiter.calls == 6  # token, four details, one retry
    assert limiter.rate < 2.0  # slowed down


async def test_40001_is_retried_with_the_same_token(harness: Harness) -> None:
    def detail(n: int) -> web.Response:
        if n == 1:
            return envelope(40001, "request too frequent, please retry later")
        return envelope(0, "success", detail_data())

    limiter = RateLimiter(LimiterSettings(10), cooldown=0.1)
    async with fake_vendor(detail) as fake:
        client = harness.client(fake.url, limiter=limiter)
        result = await client.detail("job-1")
    assert result == JobDetail(**detail_data())
    assert limiter.throttled == 1
    assert fake.detail_calls == 2
    assert fake.token_calls == 1
    assert limiter.calls == 3
    assert fake.tokens_seen[0] == fake.tokens_seen[1]  # 40001 is not a token problem


async def test_a_vendor_that_keeps_answering_40001_is_given_up_on(
    clock: FakeClock, harness: Harness
) -> None:
    # One call per simulator second and a clock that never moves: every retry is over budget.
    sim = make_simulator(clock, qps=1)
    sim.add_job("job-1", queue_s=0, run_s=0)
    limiter = fast_limiter(qps=100, cooldown=0.05)
    async with AppServer(sim.make_app()) as server:
        client = harness.client(server.url, limiter=limiter)
        with pytest.raises(VendorError, match="40001") as info:
            await client.detail("job-1")
    stats = sim.stats()
    assert stats["codes"]["40001"] == limiter.throttled
    assert 1 <= limiter.throttled <= 5  # bounded: no endless hammering
    assert limiter.calls == stats["calls"]
    assert_clean(info.value, [SECRET_KEY, *(t for _, t, _ in stored_tokens(harness.state_path))])


# --------------------------------------------------------------------------- budget


async def test_every_call_including_token_calls_goes_through_the_limiter(
    vendor: Vendor, harness: Harness
) -> None:
    sim = vendor.sim
    sim.add_job("job-1", queue_s=0, run_s=0)
    limiter = fast_limiter()
    client = harness.client(vendor.url, limiter=limiter)
    seen: list[tuple[str, str]] = []
    client.observer = lambda endpoint, label, seconds: seen.append((endpoint, label))

    await asyncio.gather(*(client.detail("job-1") for _ in range(5)))
    sim.revoke_token()
    await client.detail("job-1")
    with pytest.raises(UnknownJob):
        await client.detail("missing")
    sim.set_faults(fault_50000=1.0)
    with pytest.raises(VendorError):
        await client.detail("job-1")
    sim.set_faults(fault_50000=0.0, fault_html=1.0)
    with pytest.raises(VendorError):
        await client.detail("job-1")

    stats = sim.stats()
    assert stats["tokens_issued"] == 2
    assert limiter.calls == stats["calls"] == len(seen)
    assert seen.count(("access_token", "0")) == 2
    assert ("detail", "bad_answer") in seen
    assert ("detail", "10400") in seen


async def test_budget_counts_the_calls_of_two_clients_sharing_a_limiter(
    vendor: Vendor, harness: Harness
) -> None:
    vendor.sim.add_job("job-1", queue_s=0, run_s=0)
    limiter = fast_limiter()
    a = harness.client(vendor.url, limiter=limiter)
    b = harness.client(vendor.url, limiter=limiter, store=harness.store())
    await asyncio.gather(
        *itertools.chain.from_iterable((a.detail("job-1"), b.detail("job-1")) for _ in range(4))
    )
    stats = vendor.stats()
    assert limiter.calls == stats["calls"]
    assert stats["codes"].get("40001", 0) == 0


# --------------------------------------------------------------------------- secrets


async def test_no_secret_in_any_error(vendor: Vendor, harness: Harness, clock: FakeClock) -> None:
    """A sweep over the error paths with the real simulator; tokens are collected as issued."""
    sim = vendor.sim
    sim.add_job("job-1", queue_s=0, run_s=0)
    client = harness.client(vendor.url)
    tokens: set[str] = set()
    errors: list[BaseException] = []

    def remember() -> None:
        tokens.update(t for _, t, _ in stored_tokens(harness.state_path))
        tokens.update(client.secrets())

    async def expect(call: Awaitable[Any], kind: type[BaseException]) -> None:
        with pytest.raises(kind) as info:
            await call
        errors.append(info.value)
        remember()

    await client.detail("job-1")
    remember()
    await expect(client.detail("missing"), UnknownJob)
    for fault in ("fault_50000", "fault_51000", "fault_html"):
        sim.set_faults(**{fault: 1.0})
        await expect(client.detail("job-1"), VendorError)
        sim.set_faults(**{fault: 0.0})
    sim.revoke_token()
    await client.detail("job-1")
    remember()
    clock.advance(sim.config.token_ttl)  # everything expired: a refresh is due
    await client.detail("job-1")
    remember()

    assert len(tokens) == 4  # the secret plus three tokens
    for exc in errors:
        assert_clean(exc, sorted(tokens))
