"""The intake API's real app on 127.0.0.1 over a real store, as its tests use it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from notifier.intake.http_api import IntakeApi
from notifier.models import (
    Event,
    JobDetail,
)
from notifier.service.http_server import ServerThread
from notifier.service.metrics import Metrics
from notifier.store import Store
from tests.kit import StoreFactory

TOKEN_A = "tok-a-4f1d9c2b7e6a5d3c"


TOKEN_B = "tok-b-8e7d6c5b4a392817"


#: Short, so the slow-client tests end quickly; they wait for the cut with a far longer bound.
CLIENT_TIMEOUT = 0.5


ENDPOINTS = ["ops", "analytics"]


@dataclass
class Api:
    url: str
    port: int
    store: Store
    metrics: Metrics

    def client(self, token: str | None = TOKEN_A) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture(name="api")
def api_fixture(make_store: StoreFactory) -> Iterator[Api]:
    store = make_store()
    metrics = Metrics("test")
    intake = IntakeApi(
        store,
        [TOKEN_A, TOKEN_B],
        ENDPOINTS,
        client_timeout=CLIENT_TIMEOUT,
        observer=metrics.on_intake_request,
    )
    with ServerThread(intake.app, **intake.runner_options()) as server:
        yield Api(server.url, server.port, store, metrics)


@pytest.fixture(name="backend", params=["sqlite"])
def sqlite_backend(request: pytest.FixtureRequest) -> str:
    """The HTTP behaviour is the backend's only through the store: SQLite here (the event
    order, which is the store's, runs on both in test_events_paging_while_recording)."""
    return str(request.param)


def _record(store: Store, n: int, *, job_id: str | None = None, writer: str = "w") -> str:
    event_id = f"evt_{writer}_{n:04d}"
    body = {
        "type": "lip_sync.succeeded",
        "timestamp": "2026-11-28T12:00:00Z",
        "data": {"id": job_id or f"job_{writer}_{n}", "status": 20},
    }
    event = Event(
        event_id,
        job_id or f"job_{writer}_{n}",
        "lip_sync.succeeded",
        1.0,
        json.dumps(body).encode(),
    )
    if job_id is not None:
        store.record_terminal(_detail(job_id), event, [])
    else:
        store.record_operational(event, [])
    return event_id


def _detail(job_id: str) -> JobDetail:
    return JobDetail(job_id, 20, 100, "success", "v", "p", 1000, 1)
