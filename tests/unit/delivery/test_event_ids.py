"""A job event's id is what the event is (job, type, reopen count, account), not a random
draw: an event made again after the state lost it has the webhook-id receivers saw (issue 19,
item 11). The same job id on two accounts is two events; the default account's ids are the
ones made before accounts (issue 22), so receivers de-duplicating across the upgrade see no
new event."""

from __future__ import annotations

import re

from notifier.delivery.operational import OpsFact, build_operational_event
from notifier.delivery.transition import build_event, job_event_id
from notifier.kinds import KINDS, Phase
from notifier.models import DEFAULT_ACCOUNT, EXPIRED, FAILED, SUCCEEDED, JobDetail, WatchSpec
from tests.kit import StoreFactory

#: The format receivers have always seen: ``evt_`` and 28 lowercase hex digits.
ID_FORMAT = re.compile(r"^evt_[0-9a-f]{28}$")


def detail(job_id: str = "job-1", status: int = 20, account: str = DEFAULT_ACCOUNT) -> JobDetail:
    return JobDetail(job_id, status, 100, "success", "v", "p", 1, 1_700_000_000, account=account)


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


def test_the_default_accounts_ids_are_the_ones_made_before_accounts() -> None:
    # Computed by the program before issue 22: a receiver that de-duplicates on webhook-id
    # must not take an event made again after the upgrade for a new one.
    assert job_event_id("job-1", SUCCEEDED, 0) == "evt_773f912f4a52980ebd6c64e8cd96"
    assert job_event_id("job-1", "video.failed", 2) == "evt_e06154c049cddaeaf988dcfdded7"
    assert build_event(detail(), {}, 0.0).event_id == "evt_773f912f4a52980ebd6c64e8cd96"


def test_the_same_job_on_two_accounts_is_two_events_each_naming_its_account() -> None:
    mine = build_event(detail(), {}, 0.0)
    theirs = build_event(detail(account="shop"), {}, 0.0)
    other = build_event(detail(account="media"), {}, 0.0)
    assert len({mine.event_id, theirs.event_id, other.event_id}) == 3
    assert ID_FORMAT.match(theirs.event_id)
    assert theirs.event_id == job_event_id("job-1", SUCCEEDED, 0, "shop")
    assert (mine.account, theirs.account) == (DEFAULT_ACCOUNT, "shop")
    assert (mine.payload["data"]["account"], theirs.payload["data"]["account"]) == (
        DEFAULT_ACCOUNT,
        "shop",
    )
    # The account is one more separated part: it cannot slide into the reopen count.
    assert job_event_id("a", "b", 1, "2") != job_event_id("a", "b", 12, DEFAULT_ACCOUNT)


def test_every_kinds_payload_names_its_account() -> None:
    for kind in KINDS.values():
        job = JobDetail("j", 1, 100, "", kind=kind.name, phase=Phase.FAILED, account="shop")
        for event in (
            build_event(job, {}, 0.0),
            build_event(job, {}, 0.0, expired=True),
            build_event(job, {}, 0.0, rejections=2),
        ):
            assert event.payload["data"]["account"] == "shop", (kind.name, event.type)
            assert event.account == "shop"


def test_a_reopened_watch_that_fails_again_gets_its_second_event(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    store.add_watches([WatchSpec("job-f")], "cli")
    first = build_event(detail("job-f", 30), {}, store.now())
    assert store.record_terminal(detail("job-f", 30), first, ["ops"])
    assert store.reopen_watch("job-f")
    watch = store.get_watch("job-f")
    assert watch is not None and watch.reopens == 1
    again = build_event(detail("job-f", 30), {}, store.now(), reopens=watch.reopens)
    assert store.record_terminal(detail("job-f", 30), again, ["ops"])
    ids = [e["event_id"] for e in store.list_events()]
    assert sorted(ids) == sorted(
        [job_event_id("job-f", FAILED, 0), job_event_id("job-f", FAILED, 1)]
    )
    assert len(store.list_deliveries()) == 2  # each delivered


def test_the_same_job_on_two_accounts_ends_each_watch_with_its_own_event(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    store.add_watches([WatchSpec("job-x"), WatchSpec("job-x", account="shop")], "cli")
    shop = build_event(detail("job-x", account="shop"), {}, store.now())
    assert store.record_terminal(detail("job-x", account="shop"), shop, ["ops"])
    mine = store.get_watch("job-x")
    theirs = store.get_watch("job-x", account="shop")
    assert mine is not None and theirs is not None
    assert (mine.account, theirs.account) == (DEFAULT_ACCOUNT, "shop")
    assert store.get_watch("job-x", account="shop") is not None
    assert [w.account for w in store.due_watches(store.now() + 1, 10)] == [DEFAULT_ACCOUNT]
    # The default account's watch is still active: its own end is its own event.
    failed = build_event(detail("job-x", 30), {}, store.now())
    assert store.record_terminal(detail("job-x", 30), failed, ["ops"])
    given_up = build_event(detail("job-x", 10, "shop"), {}, store.now(), expired=True)
    assert not store.expire_watch("job-x", given_up, ["ops"], cutoff=store.now() + 1)
    rows = {(e["account"], e["type"]): e["event_id"] for e in store.list_events()}
    assert rows == {("shop", SUCCEEDED): shop.event_id, (DEFAULT_ACCOUNT, FAILED): failed.event_id}
    history = store.event_history(shop.event_id)
    assert history is not None and history["account"] == "shop"
