"""``make_due``: a vendor callback moves an active watch's poll to now (never later), on both
backends; a finished watch stays as it is."""

from __future__ import annotations

from notifier.models import JobMemory, WatchSpec
from notifier.store import Store
from tests.kit import FakeClock, StoreFactory
from tests.kit.store import detail, event


def test_an_active_watch_becomes_due_now_and_a_finished_one_does_not(
    make_store: StoreFactory,
) -> None:
    clock = FakeClock(100.0)
    store: Store = make_store(clock=clock)
    store.add_watches([WatchSpec("later"), WatchSpec("done"), WatchSpec("soon")], "queue")
    store.record_poll(detail("later", 10, 40), 400.0, 500.0, JobMemory(added_at=100.0))
    store.record_poll(detail("soon", 10, 40), 150.0, 150.0, JobMemory(added_at=100.0))
    store.record_terminal(detail("done", 20, 100), event("done"), [])
    clock.now = 120.0
    assert store.due_watches(120.0, 10) == []

    assert store.make_due("later")
    (due,) = store.due_watches(120.0, 10)
    assert (due.job_id, due.next_poll_at, due.poll_key) == ("later", 120.0, 120.0)
    # Never later than planned.
    clock.now = 130.0
    assert store.make_due("soon")
    assert [w.job_id for w in store.due_watches(130.0, 10)] == ["later", "soon"]
    assert store.make_due("later")
    assert store.get_watch("later").poll_key == 120.0  # type: ignore[union-attr]
    assert not store.make_due("done")
    assert not store.make_due("unknown")
    assert [w["state"] for w in store.list_watches() if w["job_id"] == "done"] == ["succeeded"]
