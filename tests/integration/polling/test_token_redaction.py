"""An access token is masked in logs from the moment it arrives (issue 8, defect 11)."""

from __future__ import annotations

from pathlib import Path

from notifier import log as logs
from notifier.polling.vendor import VendorClient
from notifier.store import Store
from tests.kit import Simulator
from tests.kit.vendor import vendor_client


def client_for(simulator: Simulator, store: Store) -> VendorClient:
    return vendor_client(simulator.url, store)


async def test_fetched_and_cached_tokens_are_redacted(simulator: Simulator, tmp_path: Path) -> None:
    logs.redactor.replace([])
    store = Store(tmp_path / "state.db")
    client = client_for(simulator, store)
    token = await client.token()
    await client.aclose()
    assert logs.redactor.scrub(f"header access_token: {token}") == "header access_token: ***"

    # A new process (a restart, a CLI command) that finds the token in the store masks it too.
    logs.redactor.replace([])
    again = client_for(simulator, store)
    assert await again.token() == token
    await again.aclose()
    assert token not in logs.redactor.scrub(f"{token}")
