"""Issue 22, items 3, 4 and 6, in the store: the queue carries a row's account into its
watch, a watch file sync keys its watches and listings by (account, kind, id), and the
listings filter by account in SQL (``GET /v1/events`` pages included), on both backends."""

from __future__ import annotations

from notifier.models import WatchSpec
from notifier.store import Store
from tests.kit import FakeClock, StoreFactory
from tests.kit.store import record_account_events


def _active(store: Store) -> set[tuple[str, str]]:
    return {(w["account"], w["job_id"]) for w in store.list_watches() if w["state"] == "active"}


def test_the_queue_carries_the_account_into_the_watch(make_store: StoreFactory) -> None:
    store = make_store()
    store.enqueue([WatchSpec("j1", account="shop"), WatchSpec("j1", account="media")])
    seen: list[object] = []

    def parse(
        job_id: object, labels: object, endpoints: object, kind: object, account: object
    ) -> WatchSpec:
        seen.append(account)
        return WatchSpec(str(job_id), account=str(account))

    assert store.take_queue(parse).added == 2
    assert seen == ["shop", "media"]
    assert _active(store) == {("shop", "j1"), ("media", "j1")}


def test_a_file_sync_removes_only_the_account_it_no_longer_lists(
    make_store: StoreFactory,
) -> None:
    store = make_store(clock=FakeClock())
    both = [WatchSpec("f1", account="shop"), WatchSpec("f1", account="media")]
    assert store.sync_file_watches(both) == (2, 0, 0)
    assert store.sync_file_watches(both[1:]) == (0, 0, 1)
    assert _active(store) == {("media", "f1")}
    # With nodes: node a's listing of shop's f2 keeps it while node b drops its own.
    assert store.sync_file_watches([WatchSpec("f2", account="shop")], "a") == (1, 0, 1)
    assert store.sync_file_watches([WatchSpec("f2", account="shop")], "b") == (0, 0, 0)
    assert store.sync_file_watches([], "b") == (0, 0, 0)
    assert _active(store) == {("shop", "f2")}
    assert store.keep_file_listing("a")
    assert store.sync_file_watches([WatchSpec("f2", account="media")], "a") == (1, 0, 1)
    assert _active(store) == {("media", "f2")}


def test_the_listings_filter_by_account(make_store: StoreFactory) -> None:
    store = make_store()
    store.add_watches([WatchSpec("j1", account="shop"), WatchSpec("j1", account="media")], "cli")
    rows = store.list_filtered("watches", account="shop")
    assert [(r["account"], r["job_id"]) for r in rows] == [("shop", "j1")]
    assert len(store.list_filtered("watches")) == 2
    summary = store.watch_summary("j1", account="media")
    assert summary is not None and summary["account"] == "media"
    assert store.watch_summary("j1", account="other") is None
    assert store.watch_summary("j1") is None  # the default account has no j1


def test_events_after_filters_by_account_before_the_page_is_cut(make_store: StoreFactory) -> None:
    store = make_store()
    ids, recorded = record_account_events(store, 30)
    for accounts, wanted in (
        (["shop"], ids["shop"]),
        (["media"], ids["media"]),
        (["shop", "media"], [e for e in recorded if e in set(ids["shop"] + ids["media"])]),
        (None, recorded),
    ):
        seen: list[str] = []
        after: str | None = None
        while page := store.events_after(after, 7, accounts=accounts):
            seen += [event["id"] for event in page]
            after = seen[-1]
        assert seen == wanted, accounts
    # Another account's event (or one of no account) is no cursor for a limited reader.
    assert store.events_after(ids["media"][0], 7, accounts=["shop"]) is None
    assert store.events_after(ids[None][0], 7, accounts=["shop"]) is None
    assert store.events_after(ids["media"][0], 7, accounts=["media"]) is not None
    listed = store.list_filtered("events", account="shop")
    assert sorted(r["event_id"] for r in listed) == sorted(ids["shop"])
    assert {r["account"] for r in listed} == {"shop"}
