"""Issue 22, item 3: every intake path takes an ``account`` — the only one when there is one,
else required unless one is marked default; an unknown or missing one is a problem worded
once (the config's wording for an unknown account) and framed by each path."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifier.intake.queue import parse_queue_row
from notifier.intake.watchfile import WatchFileError, load_watch_file, parse_watch_items
from notifier.models import WatchSpec
from notifier.watchspec import ANY_ACCOUNT, AccountRule, Problem, parse_watch, parse_watches

ONE = AccountRule.of(["default"], "default")
TWO = AccountRule.of(["shop", "media"], None)
TWO_SHOP = AccountRule.of(["shop", "media"], "shop")
MISSING = "name the account (several configured and none marked default: shop, media)"


def test_the_rule_names_the_account_a_watch_gets() -> None:
    assert parse_watch("j", endpoints_configured=None, accounts=ONE) == WatchSpec("j")
    assert parse_watch("j", endpoints_configured=None, accounts=TWO_SHOP).account == "shop"
    named = parse_watch("j", endpoints_configured=None, account="media", accounts=TWO_SHOP)
    assert named == WatchSpec("j", account="media")
    assert parse_watch("j", endpoints_configured=None, accounts=TWO) == [
        Problem(("account",), MISSING)
    ]
    # Unchecked (the daemon's own input): any well-formed name, ``default`` when none.
    assert parse_watch("j", endpoints_configured=None, account="x", accounts=ANY_ACCOUNT) == (
        WatchSpec("j", account="x")
    )


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ("nope", "unknown account 'nope' (configured: shop, media)"),
        ("Shop", "invalid account name 'Shop': use 1-40 lower-case letters, digits"),
        (7, "must be a string, got integer"),
        ("", "invalid account name ''"),
    ],
)
def test_a_bad_account_is_named_with_the_configured_ones(raw: object, said: str) -> None:
    parsed = parse_watches(["a", "b"], endpoints_configured=None, account=raw, accounts=TWO)
    assert parsed.specs == []
    [problem] = parsed.problems
    assert problem.loc == ("account",) and problem.msg.startswith(said)


def test_a_limited_caller_sees_only_its_accounts() -> None:
    # One allowed: it is the default, whatever the config marks.
    assert TWO_SHOP.limited(["media"]) == AccountRule(("media",), "media")
    # Several allowed: the configured default when it is one of them, else none.
    assert TWO_SHOP.limited(["shop", "media"]) == TWO_SHOP
    assert TWO.limited(["shop", "media"]).default is None
    assert TWO_SHOP.limited(None) is TWO_SHOP
    problem = parse_watch(
        "j", endpoints_configured=None, account="shop", accounts=TWO.limited(["media"])
    )
    assert problem == [Problem(("account",), "unknown account 'shop' (configured: media)")]


def test_a_queue_row_of_the_columns_default_is_the_rules_default() -> None:
    """The column's ``default`` (a writer that named none) is the account marked default,
    or a rejection saying how to name one, unless an account is called ``default``."""
    assert parse_queue_row("q", None, None, None, None, "default", TWO_SHOP) == WatchSpec(
        "q", account="shop"
    )
    assert parse_queue_row("q", None, None, None, None, "default", TWO) == f"account: {MISSING}"
    assert parse_queue_row("q", None, None, None, None, "default", ONE) == WatchSpec("q")
    assert parse_queue_row("q", None, None, None, None, "media", TWO) == WatchSpec(
        "q", account="media"
    )
    assert parse_queue_row("q", None, None, None, None, "nope", TWO) == (
        "account: unknown account 'nope' (configured: shop, media)"
    )


def test_watch_file_items_name_their_account(tmp_path: Path) -> None:
    items = [
        {"id": "j1", "account": "shop"},
        {"id": "j1", "account": "media"},  # the same id on two accounts: two watches
        "j2",
        {"id": "j3"},
    ]
    assert parse_watch_items(items, "w.yaml", None, TWO_SHOP) == [
        WatchSpec("j1", account="shop"),
        WatchSpec("j1", account="media"),
        WatchSpec("j2", account="shop"),
        WatchSpec("j3", account="shop"),
    ]
    path = tmp_path / "watch.yaml"
    path.write_text(
        "- {id: j1, account: shop}\n- {id: j1, account: shop}\n- j2\n- {id: j3, account: nope}\n"
    )
    with pytest.raises(WatchFileError) as info:
        load_watch_file(path, None, TWO)
    assert info.value.problems == [
        f"{path}: [1].id: duplicate job id 'j1' on account shop (already listed at [0])",
        f"{path}: [2].account: {MISSING}",
        f"{path}: [3].account: unknown account 'nope' (configured: shop, media)",
    ]
