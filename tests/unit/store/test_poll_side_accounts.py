"""Issue 22: each account's lane polls only its own watches. Every poll-side read of the store
(due, early, among a list page, expirable, counts, ids, discovery and its marks) is one
account's, and every write (an answer, an error, a rejection, an end, a reopen, made due)
touches only the watch of that account, even when another account watches the same id."""

from __future__ import annotations

import pytest

from notifier.models import JobDetail, JobMemory, WatchSpec
from notifier.store import Store
from tests.kit import StoreFactory
from tests.kit.store import event

A, B = "default", "shop"


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    store = make_store()
    specs = [WatchSpec(f"j{n}", account=account) for n in range(3) for account in (A, B)]
    specs.append(WatchSpec("only-b", account=B))
    store.add_watches(specs, "queue")
    return store


def _answer(job_id: str, status: int, account: str, create_time: int = 1_700_000_000) -> JobDetail:
    return JobDetail(job_id, status, 40, "ok", "", "", 0, create_time, account=account)


def test_due_and_early_watches_are_one_accounts(store: Store) -> None:
    now = store.now() + 1
    due_a = store.due_watches(now, 100)
    due_b = store.due_watches(now, 100, account=B)
    assert sorted(w.job_id for w in due_a) == ["j0", "j1", "j2"]
    assert {w.account for w in due_a} == {A}
    assert sorted(w.job_id for w in due_b) == ["j0", "j1", "j2", "only-b"]
    assert {w.account for w in due_b} == {B}
    assert len(store.early_watches(now, 100, account=B)) == 4
    assert store.due_watches(now, 100, account="nobody") == []


def test_an_answer_is_recorded_on_its_accounts_watch_only(store: Store) -> None:
    memory = JobMemory(added_at=store.now())
    store.record_poll(_answer("j0", 10, B), store.now() + 50, store.now() + 60, memory)
    a, b = store.get_watch("j0"), store.get_watch("j0", account=B)
    assert a is not None and b is not None
    assert (a.polls, a.status) == (0, None)
    assert (b.polls, b.status) == (1, 10)
    # B's j0 is no longer due; A's still is.
    now = store.now() + 1
    assert "j0" not in {w.job_id for w in store.due_watches(now, 100, account=B)}
    assert "j0" in {w.job_id for w in store.due_watches(now, 100)}


def test_an_end_finishes_only_its_accounts_watch(store: Store) -> None:
    assert store.record_terminal(_answer("j1", 20, B), event("j1-b"), ["ops"])
    assert store.get_watch("j1", account=B) is not None
    assert store.watch_summary("j1", account=B)["state"] == "succeeded"  # type: ignore[index]
    assert store.watch_summary("j1")["state"] == "active"  # type: ignore[index]
    # An answer for the other account's id finishes nothing of the first's.
    assert not store.record_terminal(_answer("only-b", 20, A), event("x"), ["ops"])
    assert store.watch_summary("only-b", account=B)["state"] == "active"  # type: ignore[index]


def test_errors_rejections_and_reopen_touch_one_account(store: Store) -> None:
    later = store.now() + 500
    store.record_poll_error("j2", "boom", later, account=B)
    b = store.get_watch("j2", account=B)
    a = store.get_watch("j2")
    assert b is not None and a is not None
    assert (b.errors, a.errors) == (1, 0)
    seen = store.record_rejection("j2", "record not found", later, 120, account=B)
    assert seen is not None and seen[0] == 1
    assert store.record_rejection("only-b", "record not found", later, 120) is None
    assert store.reject_watch("j2", "unknown id", event("j2-b", "lip_sync.rejected"), [], account=B)
    assert store.watch_summary("j2")["state"] == "active"  # type: ignore[index]
    assert not store.reopen_watch("j2")  # A's is active: nothing to reopen
    assert store.reopen_watch("j2", account=B)
    assert store.watch_summary("j2", account=B)["state"] == "active"  # type: ignore[index]


def test_make_due_moves_one_accounts_watch(store: Store) -> None:
    memory = JobMemory(added_at=store.now())
    for account in (A, B):
        later = store.now() + 900
        store.record_poll(_answer("j0", 10, account), later, later, memory)
    assert store.make_due("j0", account=B)
    now = store.now() + 1
    assert "j0" in {w.job_id for w in store.due_watches(now, 100, account=B)}
    assert "j0" not in {w.job_id for w in store.due_watches(now, 100)}
    assert not store.make_due("only-b")


def test_counts_ids_and_list_pages_are_one_accounts(store: Store) -> None:
    assert store.active_counts_by_kind() == {"lip_sync": 3}
    assert store.active_counts_by_kind(B) == {"lip_sync": 4}
    assert store.live_counts(B)[0] == 4 and store.live_counts(A)[0] == 3
    assert store.live_counts()[0] == 7  # all accounts (health, metrics)
    assert store.active_ids("lip_sync", 10, account=B) == ["j0", "j1", "j2", "only-b"]
    assert store.active_ids("lip_sync", 10) == ["j0", "j1", "j2"]
    among = store.active_watches_among(["j0", "only-b"], account=A)
    assert [w.job_id for w in among] == ["j0"]
    memory = JobMemory(added_at=store.now())
    store.record_poll(_answer("only-b", 10, B, 1_700_000_500), store.now(), store.now(), memory)
    assert store.newest_active_create_time(account=B) == 1_700_000_500
    assert store.newest_active_create_time(account=A) is None


def test_expiry_looks_at_one_account(store: Store) -> None:
    # Give up after 0 s: every watch is past it; none has a late answer yet, so each is made
    # due for a last look (none expirable), and only for the account asked.
    assert store.expirable_watches(0.0, account=B) == []
    memory = JobMemory(added_at=store.now())
    store.record_poll(_answer("only-b", 10, B), store.now() + 900, store.now() + 900, memory)
    assert [w.job_id for w in store.expirable_watches(0.0, account=B)] == ["only-b"]
    assert store.expirable_watches(0.0, account=A) == []


def test_discovery_is_one_accounts_watches_tombstones_and_marks(store: Store) -> None:
    # j0 is watched by both; new-1 by neither: each account discovers for itself.
    made_b = store.discover({"j0": 1, "new-1": 2}, {}, None, account=B)
    assert made_b == ["new-1"]
    assert store.get_watch("new-1", account=B) is not None
    assert store.get_watch("new-1") is None
    assert store.discover({"new-1": 2}, {}, None) == ["new-1"]  # A's own
    # A tombstone (removed watch) is the account's own.
    store.remove_watches(["j1"], account=B)
    assert store.discover({"j1": 3}, {}, None, account=B) == []
    # The covered mark is per account; the default account's keeps its old name.
    store.advance_discovery(0.0, 100.0, account=B)
    assert store.discovery_covered(0.0, account=B) == 100.0
    assert store.discovery_covered(0.0) == 0.0
    store.advance_discovery(0.0, 50.0)
    assert store._one("get_mark", "discovery_covered") == 50.0
    assert store._one("get_mark", "discovery_covered@shop") == 100.0
    store.advance_discovery(0.0, 7.0, "video", B)
    assert store._one("get_mark", "discovery_covered:video@shop") == 7.0


def test_watches_of_accounts_not_configured_are_counted(store: Store) -> None:
    assert store.unconfigured_accounts([A, B]) == {}
    assert store.unconfigured_accounts([A]) == {B: 4}
    store.add_watches([WatchSpec("m", account="media")], "queue")
    assert store.unconfigured_accounts([]) == {A: 3, "media": 1, B: 4}
    store.remove_watches(["m"], account="media")
    assert store.unconfigured_accounts([A]) == {B: 4}
