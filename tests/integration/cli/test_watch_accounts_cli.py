"""Issue 22, items 3 and 6, in the CLI: ``watch add --account`` (the only account, or the
one marked default, when none is named; otherwise a usage error that says how), ``watch
list --account`` and the ACCOUNT column, ``watch show``/``rm --account`` (the same id on two
accounts is two watches), ``watch rejected`` naming a queue row's account."""

from __future__ import annotations

from typing import Any

from notifier.intake.queue import take_queue
from notifier.models import Event, WatchSpec
from notifier.store import Store
from notifier.watchspec import AccountRule
from tests.kit.cli_env import Env


def _two_accounts(env: Env, default: str | None = None) -> None:
    """``accounts: [shop, media]`` in place of the example's ``chanjing`` section."""
    one = env.config.pop("chanjing")
    accounts: list[dict[str, Any]] = []
    for name in ("shop", "media"):
        account = {**one, "name": name, "app_id": f"{name}-app"}
        if name == default:
            account["default"] = True
        accounts.append(account)
    env.config["accounts"] = accounts
    env.watch_path.write_text("[]\n")
    env.write()


def test_two_accounts_and_none_marked_a_watch_must_name_its_account(env: Env) -> None:
    _two_accounts(env)
    unnamed = env.run("watch", "add", "42")
    assert unnamed.code == 2
    assert (
        "--account: name the account (several configured and none marked default: shop, media)"
        in unnamed.err
    )
    unknown = env.run("watch", "add", "42", "--account", "nope")
    assert unknown.code == 2
    assert "--account: unknown account 'nope' (configured: shop, media)" in unknown.err
    bad = env.run("watch", "add", "42", "--account", "Shop!")
    assert bad.code == 2 and "--account: invalid account name" in bad.err
    assert not env.state_path.exists()  # nothing written by a refused add

    assert "1 new" in env.ok("watch", "add", "42", "--account", "shop").out
    assert "1 new" in env.ok("watch", "add", "42", "--account", "media", "--label", "k=v").out
    rows = env.json("watch", "list")
    assert sorted((r["account"], r["job_id"], r["labels"].get("k")) for r in rows) == [
        ("media", "42", "v"),
        ("shop", "42", None),
    ]
    assert [r["account"] for r in env.json("watch", "list", "--account", "media")] == ["media"]
    assert env.json("watch", "list", "--account", "gone") == []  # any name: a removed one's
    table = env.ok("watch", "list").out.splitlines()
    assert table[0].split()[:3] == ["JOB_ID", "ACCOUNT", "KIND"]
    assert sorted(line.split()[1] for line in table[1:]) == ["media", "shop"]

    need = env.run("watch", "show", "42")
    assert need.code == 2 and "--account: name the account" in need.err
    shown = env.ok("watch", "show", "42", "--account", "media", "--json").json()
    assert (shown["account"], shown["labels"]) == ("media", {"k": "v"})

    assert env.ok("watch", "rm", "42", "--account", "shop").out.startswith("removed 1 of 1")
    assert [r["account"] for r in env.json("watch", "list")] == ["media"]
    gone = env.run("watch", "rm", "42", "--account", "shop")
    assert gone.code == 1 and "no watch for job 42 on account shop" in gone.err


def test_the_account_marked_default_takes_a_watch_that_names_none(env: Env) -> None:
    _two_accounts(env, default="media")
    assert "1 new" in env.ok("watch", "add", "7").out
    assert [(r["account"], r["job_id"]) for r in env.json("watch", "list")] == [("media", "7")]
    assert env.ok("watch", "show", "7").out  # show and rm default to it too
    assert env.ok("watch", "rm", "7").out.startswith("removed 1 of 1")


def test_one_account_shows_no_account_column_and_needs_no_name(env: Env) -> None:
    assert "1 new" in env.ok("watch", "add", "9").out
    assert [r["account"] for r in env.json("watch", "list")] == ["default"]
    assert env.ok("watch", "list").out.split()[:2] == ["JOB_ID", "KIND"]
    unknown = env.run("watch", "add", "9", "--account", "shop")
    assert unknown.code == 2 and "unknown account 'shop' (configured: default)" in unknown.err


def test_a_queue_row_that_names_no_account_is_kept_with_how_to_name_one(env: Env) -> None:
    _two_accounts(env)
    env.ok("watch", "add", "1", "--account", "shop")  # creates the state
    rule = AccountRule.of(["shop", "media"], None)
    with Store(env.state_path) as store:
        # As another program writes the queue: without an account (the column's default),
        # with an unknown one, with a good one.
        store.enqueue([WatchSpec("q1"), WatchSpec("q2", account="nope")])
        store.enqueue([WatchSpec("q3", account="media")])
        taken = take_queue(store, ["ops"], rule)
    assert taken.added == 1
    rejected = env.json("watch", "rejected")
    assert [(r["account"], r["job_id"]) for r in rejected] == [("default", "q1"), ("nope", "q2")]
    assert rejected[0]["rejected"] == (
        "account: name the account (several configured and none marked default: shop, media)"
    )
    assert rejected[1]["rejected"] == "account: unknown account 'nope' (configured: shop, media)"
    assert "ACCOUNT" in env.ok("watch", "rejected").out.splitlines()[0]
    assert ("media", "q3") in {(r["account"], r["job_id"]) for r in env.json("watch", "list")}


def test_reopen_reopens_only_the_named_accounts_watch(env: Env) -> None:
    _two_accounts(env)
    env.ok("watch", "add", "42", "--account", "shop")
    env.ok("watch", "add", "42", "--account", "media")
    with Store(env.state_path) as store:
        for account in ("shop", "media"):  # both rejected by the vendor
            event = Event(f"evt_{account}", "42", "lip_sync.rejected", 1.0, b"{}")
            assert store.reject_watch("42", "record not found", event, [], account=account)
    out = env.ok("watch", "add", "42", "--account", "media", "--reopen").out
    assert "42: rejected, watched again" in out
    states = {(w["account"], w["state"]) for w in env.json("watch", "list")}
    assert states == {("shop", "rejected"), ("media", "active")}


def test_check_names_a_watch_file_item_of_an_unknown_account(env: Env) -> None:
    _two_accounts(env, default="shop")
    env.watch_path.write_text("- a1\n- {id: a2, account: media}\n- {id: a3, account: nope}\n")
    checked = env.run("check")
    assert checked.code == 2
    assert (
        f"watch.file: {env.watch_path}: [2].account: unknown account 'nope' (configured: shop, "
        "media)" in checked.err
    )
    env.watch_path.write_text("- a1\n- {id: a2, account: media}\n")
    assert "watch file" in env.ok("check").out


def test_events_list_filters_by_account(env: Env) -> None:
    _two_accounts(env)
    env.ok("watch", "add", "1", "--account", "shop")  # creates the state
    with Store(env.state_path) as store:
        for account in ("shop", "media", None):
            name = account or "none"
            event = Event(
                f"evt_{name}", f"job-{name}", "lip_sync.succeeded", 1.0, b"{}", account=account
            )
            store.record_operational(event, [])
    rows = env.json("events", "list", "--account", "shop")
    assert [(r["event_id"], r["account"]) for r in rows] == [("evt_shop", "shop")]
    assert {r["account"] for r in env.json("events", "list")} == {"shop", "media", None}
    table = env.ok("events", "list", "--account", "media").out.splitlines()
    assert table[0].split()[:3] == ["EVENT_ID", "ACCOUNT", "JOB_ID"]
    assert [line.split()[:2] for line in table[1:]] == [["evt_media", "media"]]
    bad = env.run("events", "list", "--account", "Media")
    assert bad.code == 2 and "--account: invalid account name 'Media'" in bad.err
