"""A job event's id is what the event is (job, type, reopen count), not a random draw: an
event made again after the state lost it has the webhook-id receivers saw (issue 19, item 11).
"""

from __future__ import annotations

import re

from notifier.delivery.operational import OpsFact, build_operational_event
from notifier.delivery.transition import build_event, job_event_id
from notifier.models import EXPIRED, SUCCEEDED, JobDetail, WatchSpec
from tests.kit import StoreFactory

#: The format receivers have always seen: ``evt_`` and 28 lowercase hex digits.
ID_FORMAT = re.compile(r"^evt_[0-9a-f]{28}$")


def detail(job_id: str = "job-1", status: int = 20) -> JobDetail:
    return JobDetail(job_id, status, 100, "success", "v", "p", 1, 1_700_000_000)


def test_the_same_event_made_twice_has_one_id() -> None:
    first = build_event(detail(), {"a": "1"}, 1_700_000_000.0, 1.0)
    later = build_event(detail(), {"a": "2"}, 1_700_009_999.0, None)  # another node, later
    assert first.event_id == later.event_id == job_event_id("job-1", SUCCEEDED, 0)
    assert ID_FORMAT.match(first.event_id)


def test_job_type_and_reopen_count_each_make_another_id() -> None:
    ids = {
        build_event(detail("job-1"), {}, 0.0).event_id,
        build_event(detail("job-2"), {}, 0.0).event_id,
        build_event(detail("job-1", 30), {}, 0.0).event_id,
        build_event(detail("job-1", 10), {}, 0.0, expired=True).event_id,
        build_event(detail("job-1"), {}, 0.0, rejections=3).event_id,
        build_event(detail("job-1"), {}, 0.0, reopens=1).event_id,
        build_event(detail("job-1"), {}, 0.0, reopens=2).event_id,
    }
    assert len(ids) == 7
    assert all(ID_FORMAT.match(i) for i in ids)
    # No input can slide into the next one: the parts are separated.
    assert job_event_id("a", "b1", 0) != job_event_id("a", "b", 10)


def test_operational_events_stay_one_per_occurrence() -> None:
    fact = OpsFact("vendor.failing", {"error": "x"})
    assert (
        build_operational_event(fact, 1.0).event_id != build_operational_event(fact, 1.0).event_id
    )


def test_a_reopen_counts_and_the_next_event_has_a_new_id(make_store: StoreFactory) -> None:
    store = make_store()
    store.add_watches([WatchSpec("job-r")], "cli")
    watch = store.get_watch("job-r")
    assert watch is not None and watch.reopens == 0
    given_up = build_event(detail("job-r", 10), {}, store.now(), expired=True)
    assert store.expire_watch("job-r", given_up, ["ops"], cutoff=store.now() + 1)
    assert store.reopen_watch("job-r")
    watch = store.get_watch("job-r")
    assert watch is not None and watch.reopens == 1
    assert [w.reopens for w in store.due_watches(store.now() + 1, 10)] == [1]
    finished = build_event(detail("job-r"), {}, store.now(), reopens=watch.reopens)
    assert store.record_terminal(detail("job-r"), finished, ["ops"])
    ids = {e["event_id"]: e["type"] for e in store.list_events()}
    assert ids == {
        job_event_id("job-r", EXPIRED, 0): EXPIRED,
        job_event_id("job-r", SUCCEEDED, 1): SUCCEEDED,
    }
