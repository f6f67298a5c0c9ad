"""``intake.tokens``: the bearer tokens of the intake API, each for every account or, with
``accounts:``, for those accounts only (a tenant's token: its watches and events, nothing of
the others'). The names are checked against the configured accounts with the other account
references (:meth:`notifier.config.sections.Config._account_references`)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, model_validator

from notifier.config.accounts import account_name
from notifier.config.fields import secret_text
from notifier.config.problems import kind

_MODEL = ConfigDict(extra="forbid", frozen=True)

_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]{16,256}=*")


def intake_token(value: object) -> str:
    """A bearer token (or the callback's): long and URL-safe, never echoed in a problem."""
    text = secret_text(value)
    if not _TOKEN_RE.fullmatch(text):
        # Never echoed: it is a secret.
        raise ValueError(
            "must be 16-256 characters of letters, digits and -._~+/ (e.g. openssl rand -hex 32)"
        )
    return text


def _token_accounts(value: object) -> object:
    if isinstance(value, list) and not value:
        raise ValueError("list at least one account (leave accounts out for every account)")
    return value


class IntakeToken(BaseModel):
    """An item of ``intake.tokens``: a token alone (every account), or ``{token, accounts}``:
    a token that adds, reads and deletes only those accounts' watches and reads only their
    events (a tenant's)."""

    model_config = _MODEL

    token: Annotated[SecretStr, BeforeValidator(intake_token)]
    #: None: every account's watches and events.
    accounts: Annotated[
        list[Annotated[str, BeforeValidator(account_name)]] | None,
        BeforeValidator(_token_accounts),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: object) -> object:
        """A bare token is ``{token: …}`` (checked here, so its problem is the item's)."""
        if isinstance(value, str | SecretStr):
            return {"token": intake_token(value)}
        if not isinstance(value, dict):
            raise ValueError(
                f"must be a token or a mapping with token and accounts, got {kind(value)}"
            )
        return value
