"""What the gateway needs of the state, on both backends: a watch's last answer as the
vendor sent it, the key that signs its tokens (one for every node), and where the lease
holder's gateway is reachable."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from notifier.kinds import Phase
from notifier.models import Event, JobDetail, JobMemory, WatchSpec
from notifier.polling.vendor import parse_detail
from notifier.store import Observation, Store
from notifier.store.rows import MAX_LAST_DATA
from tests.kit import FakeClock, StoreFactory

DATA = {
    "id": "job-1",
    "status": 10,
    "progress": 40,
    "msg": '生成中 \u2028 "quoted"',
    "video_url": "",
    "preview_url": "https://cdn.example/p.jpg",
    "duration": 0,
    "create_time": 1_700_000_000,
    "extra": {"nested": [1, 2.5, None, True]},
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def store(make_store: StoreFactory, clock: FakeClock) -> Store:
    s = make_store(clock=clock)
    s.add_watches([WatchSpec("job-1")], "queue")
    return s


def poll(store: Store, detail: JobDetail) -> None:
    store.record_poll(detail, store.now() + 5, store.now() + 5, JobMemory(added_at=0.0))


def event(job_id: str) -> Event:
    return Event(f"evt_{job_id}", job_id, "lip_sync.succeeded", 1.0, b"{}")


# --------------------------------------------------------------------------- last observation


def test_a_poll_keeps_the_answer_as_sent_and_when(store: Store, clock: FakeClock) -> None:
    assert store.last_observation("not-watched") is None
    assert store.last_observation("job-1") == Observation("job-1", "active", None, None, None)
    poll(store, parse_detail("job-1", DATA))
    assert store.last_observation("job-1") == Observation(
        "job-1", "active", 10, DATA, 1_800_000_000.0, phase=Phase.RUNNING
    )

    clock.advance(7.5)
    done = {**DATA, "status": 20, "progress": 100, "video_url": "https://cdn.example/v.mp4"}
    assert store.record_terminal(parse_detail("job-1", done), event("job-1"), ["ops"])
    assert store.last_observation("job-1") == Observation(
        "job-1", "succeeded", 20, done, 1_800_000_007.5, phase=Phase.SUCCEEDED
    )


def test_the_stored_json_is_compact_ascii(store: Store) -> None:
    poll(store, parse_detail("job-1", DATA))
    row = store._run("last_observation", ("default", "lip_sync", "job-1")).fetchone()
    assert row["last_data"] == json.dumps(DATA, ensure_ascii=True, separators=(",", ":"))


def test_a_refused_id_keeps_the_last_answer_seen(store: Store, clock: FakeClock) -> None:
    poll(store, parse_detail("job-1", DATA))
    clock.advance(60)
    unknown = Event("evt_1", "job-1", "lip_sync.rejected", 1.0, b"{}")
    assert store.reject_watch("job-1", "vendor does not know this id", unknown, [])
    assert store.last_observation("job-1") == Observation(
        "job-1", "rejected", None, DATA, 1_800_000_000.0
    )


def test_an_answer_without_raw_data_is_recorded_as_unknown(store: Store) -> None:
    poll(store, parse_detail("job-1", DATA))
    poll(store, JobDetail("job-1", 10, 50, "", "", "", 0, 1_700_000_000))
    observed = store.last_observation("job-1")
    assert observed is not None and observed.data is None and observed.status == 10
    assert observed.observed_at == 1_800_000_000.0


@pytest.mark.parametrize(
    "raw",
    [
        {**DATA, "msg": "x" * MAX_LAST_DATA},  # far beyond any real answer
        {**DATA, "odd": {1, 2}},  # not JSON at all
    ],
    ids=["too large", "not JSON"],
)
def test_data_that_cannot_be_kept_is_null_and_the_poll_still_recorded(
    store: Store, raw: dict[str, Any]
) -> None:
    poll(store, JobDetail("job-1", 10, 55, "", "", "", 0, 1_700_000_000, raw=raw))
    observed = store.last_observation("job-1")
    assert observed is not None and observed.data is None
    watch = store.get_watch("job-1")
    assert watch is not None and (watch.status, watch.progress, watch.polls) == (10, 55, 1)


def test_data_another_program_garbled_reads_as_unknown(store: Store) -> None:
    poll(store, parse_detail("job-1", DATA))
    for garbled in ("{not json", "[1, 2]"):
        with store.transaction():
            store._run("record_poll", {**_poll_args(store), "last_data": garbled})
        observed = store.last_observation("job-1")
        assert observed is not None and observed.data is None and observed.status == 10


def _poll_args(store: Store) -> dict[str, Any]:
    return {
        "account": "default",
        "kind": "lip_sync",
        "job_id": "job-1",
        "status": 10,
        "phase": "running",
        "progress": 40,
        "msg": "",
        "create_time": 0,
        "now": store.now(),
        "next_poll_at": store.now(),
        "poll_key": store.now(),
        "first_running_at": None,
        "first_running_progress": None,
        "last_queued_at": None,
        "misses": 0,
        "predicted_at": None,
    }


def test_job_detail_equality_and_hash_ignore_raw() -> None:
    a = parse_detail("job-1", DATA)
    b = JobDetail("job-1", 10, 40, DATA["msg"], "", DATA["preview_url"], 0, 1_700_000_000)
    assert a.raw == DATA and b.raw is None
    assert a == b and hash(a) == hash(b)


# --------------------------------------------------------------------------- gateway key


def test_the_gateway_key_is_made_once_for_every_connection(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    key = a.gateway_key()
    assert isinstance(key, bytes) and len(key) == 32
    assert b.gateway_key() == key == a.gateway_key()
    a.close()
    b.close()
    assert make_store().gateway_key() == key  # survives a reopen


def test_two_first_askers_at_once_agree(make_store: StoreFactory) -> None:
    """Both see no key, then both insert one at the same moment: one insert wins, and both
    read the winner's key."""
    stores = [make_store(), make_store()]
    both_looked = threading.Barrier(2, timeout=10)
    for s in stores:
        plain, first = s._one, [True]

        def one(name: str, *args: Any, _plain: Any = plain, _first: list[bool] = first) -> Any:
            value = _plain(name, *args)
            if name == "get_gateway_key" and _first[0]:
                _first[0] = False
                assert value is None
                both_looked.wait()  # neither inserts before both saw no key
            return value

        s._one = one  # type: ignore[method-assign]
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def ask(s: Store) -> None:
        try:
            keys.append(s.gateway_key())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(keys) == 2 and keys[0] == keys[1]
    rows = stores[0]._run("get_gateway_key", ("tokens",)).fetchall()
    assert [row[0] for row in rows] == [keys[0].hex()]


# --------------------------------------------------------------------------- lease advertise


def test_the_lease_row_says_where_the_holders_gateway_is(make_store: StoreFactory) -> None:
    a, b = make_store(), make_store()
    assert a.lease_advertise("vendor") is None  # nobody holds it
    assert a.acquire_lease("vendor", "node-a", 60.0, advertise="http://a:8080") is not None
    assert b.lease_advertise("vendor") == "http://a:8080"
    # Another node's failed take leaves the holder's URL alone.
    assert b.acquire_lease("vendor", "node-b", 60.0, advertise="http://b:8080") is None
    assert b.lease_advertise("vendor") == "http://a:8080"
    # A renewal writes the holder's current one (it moved, or has none now).
    assert a.acquire_lease("vendor", "node-a", 60.0, advertise="http://a:9090") is not None
    assert b.lease_advertise("vendor") == "http://a:9090"
    assert a.acquire_lease("vendor", "node-a", 60.0) is not None
    assert b.lease_advertise("vendor") is None
    holder = b.lease_holder("vendor")
    assert holder is not None and holder[0] == "node-a"  # its shape is unchanged
    # A takeover: the new holder's URL.
    assert b.acquire_lease("vendor", "node-b", 60.0, force=True, advertise="http://b:8080")
    assert a.lease_advertise("vendor") == "http://b:8080"
    # Expired (a zero-length lease lapses by the next statement): nobody's.
    assert b.acquire_lease("vendor", "node-b", 0.0, advertise="http://b:8080") is not None
    assert a.lease_advertise("vendor") is None
