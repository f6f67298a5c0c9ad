"""Issue 18: ``/healthz`` was a write transaction per request (thousands a second from anyone
who reaches it). The health check's write probe runs at most once a second."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.service import store_outage
from notifier.service.store_outage import StoreOutage
from notifier.store import Store


def test_the_health_probe_writes_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "state.db")
    probes: list[bool] = []
    real = store.writable

    def counted() -> bool:  # the real probe, counted
        probes.append(real())
        return probes[-1]

    monkeypatch.setattr(store, "writable", counted)
    now = [1000.0]
    monkeypatch.setattr(store_outage.time, "monotonic", lambda: now[0])
    outage = StoreOutage(store)
    assert all(outage.writable_lately() for _ in range(1000))
    assert probes == [True]
    now[0] += store_outage.STORE_PROBE_EVERY
    assert outage.writable_lately()
    assert probes == [True, True]
    store.close()


async def test_the_daemons_health_check_probes_the_state_at_most_once_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from notifier.config import parse_config
    from notifier.service.daemon import Daemon

    config = parse_config(
        {
            "chanjing": {"base_url": "http://127.0.0.1:9", "app_id": "a", "secret_key": "s"},
            "state": {"path": str(tmp_path / "state.db")},
        }
    )
    daemon = Daemon(config, None)
    probes: list[bool] = []
    real = daemon.store.writable

    def counted() -> bool:
        probes.append(real())
        return probes[-1]

    monkeypatch.setattr(daemon.store, "writable", counted)
    try:
        answers = {daemon.health()[0] for _ in range(1000)}
        assert answers == {True}
        assert len(probes) <= 1
    finally:
        await daemon.lane.vendor.aclose()
        daemon.store.close()
        daemon.lease_store.close()
