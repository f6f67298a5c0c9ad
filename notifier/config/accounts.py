"""The vendor accounts: ``chanjing:`` (one account, named ``default``) or ``accounts:`` (several).

Each account is an ``app_id`` of its own, so its own token (a new one revokes that app's old
one), its own budget of calls a second and its own lease. Two accounts with the same app at
the same vendor would revoke each other's tokens: that is an error, not a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, StrictBool, field_validator

from notifier.config.fields import http_url, int_between, plain_http_host, plain_text, secret_text
from notifier.config.problems import KeyedProblems, Loc, duplicate_names, kind, show

#: The name of the one account a ``chanjing:`` section configures (and of every watch,
#: event and token of a state from before accounts).
DEFAULT_ACCOUNT = "default"
#: The vendor's documented limit of calls a second per account.
VENDOR_QPS_LIMIT = 10

_MODEL = ConfigDict(extra="forbid", frozen=True)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"


class ChanjingConfig(BaseModel):
    """How to reach the vendor API as one account."""

    model_config = _MODEL

    base_url: str = "https://open-api.chanjing.cc"
    app_id: Annotated[str, BeforeValidator(plain_text)]
    secret_key: Annotated[SecretStr, BeforeValidator(secret_text)]
    #: Vendor calls per second, shared by everything this process does for the account.
    qps: Annotated[int, BeforeValidator(int_between(1, 1000))] = 10

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> str:
        url = http_url(value)
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return url.rstrip("/")


def account_name(value: object) -> str:
    """Lower-case letters, digits, ``_`` and ``-``: the name goes into URL paths (the
    callback route), metric labels and the state's mark names."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {kind(value)}")
    if not (0 < len(value) <= 40 and set(value) <= set(_NAME_CHARS) and value[0] != "-"):
        raise ValueError(
            f"invalid account name {show(value)}: use 1-40 lower-case letters, digits, "
            "'_' or '-', not starting with '-'"
        )
    return value


def unknown_account(name: str, names: Sequence[str]) -> str:
    """The one wording for a name no account has."""
    return f"unknown account {name!r} (configured: {', '.join(names)})"


def optional_account(value: object) -> str | None:
    return None if value is None else account_name(value)


def reference_problems(
    names: Sequence[str], default: str | None, refs: Sequence[tuple[Loc, str | None]]
) -> list[tuple[Loc, str]]:
    """Of the places that name an account (None: the default one), those naming none that
    is configured, or none when there is no default account."""
    problems: list[tuple[Loc, str]] = []
    for where, name in refs:
        if name is None and default is None:
            problems.append(
                (where, f"name the account (several and none marked default: {', '.join(names)})")
            )
        elif name is not None and name not in names:
            problems.append((where, unknown_account(name, names)))
    return problems


class AccountConfig(ChanjingConfig):
    """An item of ``accounts:``."""

    name: Annotated[str, BeforeValidator(account_name)]
    #: The account of a watch that names none (several accounts; one account needs no mark).
    default: StrictBool = False


def one_vendor_section(data: dict[str, Any]) -> dict[str, Any]:
    """``chanjing:`` or ``accounts:``, not both and not neither (before validation: a
    missing section is worded here, once, with both ways out)."""
    has_one, has_many = "chanjing" in data, "accounts" in data
    if has_one and has_many:
        raise KeyedProblems(
            [
                (
                    ("accounts",),
                    "give chanjing (one account) or accounts (several), not both: move the "
                    "chanjing section into accounts as an item with a name",
                )
            ]
        )
    if not has_one and not has_many:
        raise KeyedProblems(
            [(("chanjing",), "required key is missing (or accounts, for several accounts)")]
        )
    if data.get("accounts") is None and has_many:
        data["accounts"] = []
    return data


def check_accounts(accounts: Sequence[AccountConfig]) -> None:
    """Names unique, one app per account, at most one default; problems keyed by item."""
    problems: list[tuple[Loc, str]] = []
    if not accounts:
        problems.append(((), "name at least one account (or use the chanjing section)"))
    problems += duplicate_names((a.name for a in accounts), "account", "accounts")
    apps: dict[tuple[str, str], str] = {}
    defaults: list[str] = []
    for i, account in enumerate(accounts):
        app = (account.base_url, account.app_id)
        if app in apps:
            problems.append(
                (
                    (i, "app_id"),
                    f"the same app_id as account {apps[app]!r} at the same base_url: the two "
                    "would revoke each other's tokens (one live token per app_id)",
                )
            )
        else:
            apps[app] = account.name
        if account.default:
            defaults.append(account.name)
    if len(defaults) > 1:
        problems.append(((), f"more than one account marked default: {', '.join(defaults)}"))
    if problems:
        raise KeyedProblems(problems)


def account_warnings(accounts: Sequence[AccountConfig], single: bool) -> list[str]:
    """Plain http to a remote vendor, a budget above the vendor's limit; worded with the
    key the user wrote (``chanjing.`` for the one-account section)."""
    out: list[str] = []
    for i, account in enumerate(accounts):
        where = "chanjing" if single else f"accounts[{i}] ({account.name})"
        plain = plain_http_host(account.base_url)
        if plain is not None:
            out.append(
                f"{where}.base_url: plain http to non-loopback host {plain}; "
                "the secret key and access token travel unencrypted; use https"
            )
        host = urlsplit(account.base_url).hostname or ""
        if host.endswith("chanjing.cc") and account.qps > VENDOR_QPS_LIMIT:
            out.append(
                f"{where}.qps: {account.qps} is above the vendor's limit of "
                f"{VENDOR_QPS_LIMIT} requests/second; expect rate-limit errors"
            )
    return out
