"""The real senders against the real local Receiver, over loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from notifier.delivery.senders import SlackSender, WebhookSender
from notifier.models import FAILED, SUCCEEDED, Event, SendResult
from notifier.service.http_server import ServerThread
from notifier.tools.receiver import Receiver

SECRET_A = "whsec_" + base64.b64encode(b"secret-a-0123456789abcdef012345").decode()
SECRET_B = "whsec_" + base64.b64encode(b"secret-b-0123456789abcdef012345").decode()
SECRET_WRONG = "whsec_" + base64.b64encode(b"not-the-secret-0123456789abcdef").decode()
SECRETS = {"/hook": [SECRET_A], "/rotated": [SECRET_B], "/scripted": [SECRET_A]}


def make_event(event_id: str = "evt_int_1", *, failed: bool = False) -> Event:
    job_id = "job-" + event_id
    payload: dict[str, Any] = {
        "type": FAILED if failed else SUCCEEDED,
        "timestamp": "2026-11-27T16:00:00Z",
        "data": {
            "id": job_id,
            "status": 30 if failed else 20,
            "progress": 60 if failed else 100,
            "msg": "insufficient balance" if failed else "success",
            "video_url": "" if failed else f"https://cdn.example.com/{job_id}.mp4",
            "preview_url": "" if failed else f"https://cdn.example.com/{job_id}.jpg",
            "duration": 0 if failed else 12345,
            "create_time": 1738636800,
            "labels": {"customer": "acme", "batch": "7"},
        },
    }
    return Event(
        event_id=event_id,
        job_id=job_id,
        type=payload["type"],
        created_at=1_800_000_000.0,
        body=json.dumps(payload).encode(),
    )


def assert_clean(result: SendResult, *secret_bits: str) -> None:
    """The error is short and leaks neither the URL nor any secret."""
    assert result.error is not None
    assert len(result.error) <= 120
    for bit in ("127.0.0.1", "http://", *secret_bits):
        assert bit not in result.error


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(secrets=SECRETS)


@pytest.fixture
def server(receiver: Receiver) -> Iterator[ServerThread]:
    with ServerThread(receiver.make_app) as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def webhook(
    client: httpx.AsyncClient, url: str, *secrets: str, timeout: float = 5
) -> WebhookSender:
    return WebhookSender(client, url, list(secrets), timeout=timeout)


# -- webhooks ---------------------------------------------------------------------------------


async def test_signed_with_one_secret_verifies(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    event = make_event()
    result = await webhook(client, server.url + "/hook", SECRET_A).send(event)
    assert result.ok and result.status == 200
    (got,) = receiver.accepted("/hook")
    assert got.verified is True
    assert got.webhook_id == event.event_id
    assert got.body == event.body
    assert got.payload["data"]["labels"] == {"customer": "acme", "batch": "7"}
    assert got.content_type == "application/json"
    assert got.signature is not None and got.signature.startswith("v1,")
    assert got.timestamp is not None and got.timestamp.isdigit()


async def test_key_rotation_two_signatures_receiver_knows_second(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    result = await webhook(client, server.url + "/rotated", SECRET_A, SECRET_B).send(make_event())
    assert result.ok
    (got,) = receiver.accepted("/rotated")
    assert got.verified is True
    assert got.signature is not None and len(got.signature.split(" ")) == 2


async def test_wrong_secret_is_rejected_and_retryable(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    result = await webhook(client, server.url + "/hook", SECRET_WRONG).send(make_event())
    assert not result.ok and not result.permanent and result.status == 400
    assert_clean(result, SECRET_WRONG)
    (got,) = receiver.received
    assert got.verified is False and got.status_returned == 400
    assert receiver.accepted() == []


async def test_webhook_id_is_stable_across_attempts(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.script("/scripted", [500])
    sender = webhook(client, server.url + "/scripted", SECRET_A)
    event = make_event("evt_retry")
    first = await sender.send(event)
    assert (first.ok, first.permanent, first.status, first.error) == (
        False,
        False,
        500,
        "HTTP 500",
    )
    assert_clean(first, SECRET_A)
    second = await sender.send(event)
    assert second.ok
    attempts = receiver.received
    assert [r.attempt for r in attempts] == [1, 2]
    assert [r.status_returned for r in attempts] == [500, 200]
    assert {r.webhook_id for r in attempts} == {"evt_retry"}
    assert all(r.verified for r in attempts)


async def test_429_retry_after_is_parsed(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.script("/scripted", [(429, {"Retry-After": "7"})])
    result = await webhook(client, server.url + "/scripted", SECRET_A).send(make_event())
    assert not result.ok and not result.permanent
    assert result.status == 429 and result.retry_after == 7.0
    assert_clean(result, SECRET_A)


async def test_410_is_permanent(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.script("/scripted", [410])
    result = await webhook(client, server.url + "/scripted", SECRET_A).send(make_event())
    assert not result.ok and result.permanent and result.status == 410
    assert_clean(result, SECRET_A)


async def test_redirect_is_a_failed_attempt_and_not_followed(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.script("/scripted", [(302, {"Location": server.url + "/hook"})])
    result = await webhook(client, server.url + "/scripted", SECRET_A).send(make_event())
    assert not result.ok and not result.permanent and result.status == 302
    assert result.error == "redirect 302 not followed"
    assert [r.path for r in receiver.received] == ["/scripted"]


async def test_slow_receiver_times_out(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.set_delay("/hook", 30)  # cut short when the server stops
    loop = asyncio.get_running_loop()
    started = loop.time()
    # Long enough for the request to be sent on busy cores: the answer is what times out.
    result = await webhook(client, server.url + "/hook", SECRET_A, timeout=2.0).send(make_event())
    assert loop.time() - started >= 2.0
    assert not result.ok and not result.permanent and result.status is None
    assert result.error is not None and "timeout" in result.error
    assert_clean(result, SECRET_A)
    # the request did arrive (recorded before the slow answer); cross-loop wait, no polling
    assert await receiver.wait_for(lambda r: len(r.received) == 1, timeout=10)


async def test_connection_refused_is_a_failed_attempt(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook"
    result = await webhook(client, url, SECRET_A).send(make_event())
    assert not result.ok and not result.permanent and result.status is None
    assert result.error is not None and result.error.startswith("connection failed")
    assert_clean(result, SECRET_A, str(port))


@pytest.mark.parametrize(
    ("status", "ok", "permanent", "error"),
    [
        (200, True, False, None),
        (299, True, False, None),
        (301, False, False, "redirect 301 not followed"),
        (400, False, False, "HTTP 400"),
        (410, False, True, "HTTP 410 Gone"),
        (503, False, False, "HTTP 503"),
    ],
)
async def test_webhook_status_mapping(
    receiver: Receiver,
    server: ServerThread,
    client: httpx.AsyncClient,
    status: int,
    ok: bool,
    permanent: bool,
    error: str | None,
) -> None:
    url = server.url + "/scripted"
    receiver.script("/scripted", [(status, {"Location": url + "/elsewhere"}, url)])
    result = await webhook(client, url, SECRET_A).send(make_event())
    assert (result.ok, result.permanent, result.error, result.status) == (
        ok,
        permanent,
        error,
        status,
    )
    assert [r.status_returned for r in receiver.received] == [status]  # one request, no hops
    if error is not None:
        assert_clean(result, SECRET_A)


# -- Slack ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "ok", "permanent", "error"),
    [
        (200, "ok", True, False, None),
        (400, "invalid_payload", False, True, "HTTP 400: invalid_payload"),
        (403, "invalid_token\n{url}", False, True, "HTTP 403: invalid_token <url>"),
        (404, "", False, True, "HTTP 404"),
        (429, "rate_limited", False, False, "HTTP 429 rate limited"),
        (500, "internal", False, False, "HTTP 500"),
        (302, "", False, False, "redirect 302 not followed"),
    ],
)
async def test_slack_status_mapping(
    receiver: Receiver,
    server: ServerThread,
    client: httpx.AsyncClient,
    status: int,
    body: str,
    ok: bool,
    permanent: bool,
    error: str | None,
) -> None:
    url = server.url + "/slack"
    headers = {"Retry-After": "3", "Location": url + "/elsewhere"}
    receiver.script("/slack", [(status, headers, body.format(url=url))])
    sender = SlackSender(client, url, timeout=5, min_spacing=0)
    result = await sender.send(make_event())
    assert (result.ok, result.permanent, result.error, result.status) == (
        ok,
        permanent,
        error,
        status,
    )
    if status in (429, 500):
        assert result.retry_after == 3.0
    (got,) = receiver.received
    assert set(got.payload) == {"text", "blocks"}
    if error is not None:
        assert_clean(result)


async def test_slack_pacing_on_receiver_clock(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    sender = SlackSender(client, server.url + "/slack", timeout=5, min_spacing=0.3)
    results = await asyncio.gather(
        sender.send(make_event("evt_s1")), sender.send(make_event("evt_s2", failed=True))
    )
    assert all(r.ok for r in results)
    first, second = sorted(receiver.accepted("/slack"), key=lambda r: r.received_at)
    assert second.received_at - first.received_at >= 0.3
    assert first.verified is None and first.webhook_id is None
    for got in (first, second):
        assert set(got.payload) == {"text", "blocks"}
        assert got.payload["blocks"][0]["type"] == "header"
    assert [r.attempt for r in receiver.received] == [1, 2]


async def test_slack_404_is_permanent_with_reason(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.script("/slack", [404])
    url = server.url + "/slack"
    result = await SlackSender(client, url, timeout=5, min_spacing=0).send(make_event())
    assert not result.ok and result.permanent and result.status == 404
    assert result.error == "HTTP 404: no_service"
    assert_clean(result)


async def test_slack_429_retry_after(
    receiver: Receiver, server: ServerThread, client: httpx.AsyncClient
) -> None:
    receiver.script("/slack", [(429, {"Retry-After": "2"}), 500])
    sender = SlackSender(client, server.url + "/slack", timeout=5, min_spacing=0)
    limited = await sender.send(make_event())
    assert not limited.ok and not limited.permanent and limited.retry_after == 2.0
    broken = await sender.send(make_event())
    assert not broken.ok and not broken.permanent and broken.error == "HTTP 500"
    assert (await sender.send(make_event())).ok
    assert [r.status_returned for r in receiver.received] == [429, 500, 200]


# -- the receiver itself ----------------------------------------------------------------------


def test_unsigned_request_to_secret_path_is_400_and_blocking_wait_wakes() -> None:
    receiver = Receiver(secrets=SECRETS)
    with ServerThread(receiver.make_app) as srv:
        done = threading.Event()

        def waiter() -> None:
            if receiver.wait_for_blocking(lambda r: len(r.received) >= 2, timeout=10):
                done.set()

        thread = threading.Thread(target=waiter)
        thread.start()
        with httpx.Client() as c:
            unsigned = c.post(srv.url + "/hook", json={"type": "x"})
            plain = c.post(srv.url + "/anything/else", json={"text": "hi"})
            listing = c.get(srv.url + "/_receiver/received").json()
        thread.join(10)
    assert done.is_set()
    assert unsigned.status_code == 400 and plain.status_code == 200 and plain.text == "ok"
    assert [r.verified for r in receiver.received] == [False, None]
    assert [r["path"] for r in listing["received"]] == ["/hook", "/anything/else"]
    assert listing["received"][1]["payload"] == {"text": "hi"}
    assert listing["summary"]["requests"] == 2 and listing["summary"]["failed_verification"] == 1
    assert receiver.summary() == listing["summary"]


def test_wait_for_times_out_false() -> None:
    receiver = Receiver()
    assert asyncio.run(receiver.wait_for(lambda r: bool(r.received), timeout=0.05)) is False
    assert receiver.wait_for_blocking(lambda r: bool(r.received), timeout=0.05) is False
