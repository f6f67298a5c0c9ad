"""Gateway tokens: what an application gets instead of the vendor's token.

A token is a signed statement "client C of account A, valid until T", HMAC'd with a key
kept in the state (``Store.gateway_key``), so every node and every restart accepts it without
a table of tokens, and issuing one never revokes another. The account is inside the signed
part: the binding lasts as long as the token, on every node. A client removed from the
config, or moved to another account, loses its tokens at once: the pair in a token must
still be configured. A token from before accounts names no account: it is the default
account's (if there is one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

#: How long a gateway token is accepted. The vendor's SDK assumes 24 h whatever
#: ``expire_in`` says (and refreshes 5 min before): an hour more, so it never meets a 10400.
TOKEN_LIFE = 25 * 3600
_PREFIX = "gw1"
#: The name under which the account's own app_id/secret_key is logged and counted.
ACCOUNT_CLIENT = "account"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _digest(text: str) -> bytes:
    # Compared as digests: equal lengths, and any text (non-ASCII too) can be compared.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class Holder(NamedTuple):
    """Who holds a token: the client (``account`` for an account's own credentials) and the
    vendor account its calls are made as."""

    client: str
    account: str


class Credentials:
    """Who may get a token: ``(client name, account, app_id, secret_key)`` entries."""

    def __init__(self, entries: Sequence[tuple[str, str, str, str]]) -> None:
        self._entries = [
            (Holder(name, account), _digest(app_id), _digest(secret))
            for name, account, app_id, secret in entries
        ]
        self.holders = frozenset(holder for holder, _a, _s in self._entries)

    def match(self, app_id: str, secret_key: str) -> Holder | None:
        """Whose credentials these are (the first entry they match), or None; every entry
        is compared in full, whichever matches, so the time taken says nothing about which
        part was wrong."""
        given_id, given_secret = _digest(app_id), _digest(secret_key)
        found: Holder | None = None
        for holder, known_id, known_secret in self._entries:
            same_id = hmac.compare_digest(given_id, known_id)
            same_secret = hmac.compare_digest(given_secret, known_secret)
            if same_id & same_secret and found is None:
                found = holder
        return found


class GatewayTokens:
    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, holder: Holder) -> tuple[str, int]:
        """A new token for ``holder`` and its expiry as a unix timestamp (``expire_in``)."""
        expires = int(self._clock()) + TOKEN_LIFE
        claims = {"c": holder.client, "a": holder.account, "e": expires}
        body = json.dumps({**claims, "n": secrets.token_hex(8)})
        payload = _b64(body.encode())
        return f"{_PREFIX}.{payload}.{self._mac(payload)}", expires

    def holder_of(
        self, token: str, known: frozenset[Holder], legacy: str | None = None
    ) -> Holder | None:
        """Who a valid, unexpired token was issued to (still in ``known``), or None. A token
        that names no account (issued before accounts) is ``legacy``'s: the default account
        (None: there is none, and the application fetches a new token)."""
        prefix, _, rest = token.partition(".")
        payload, _, mac = rest.partition(".")
        if prefix != _PREFIX or not payload or not mac or len(token) > 512:
            return None
        if not hmac.compare_digest(_digest(mac), _digest(self._mac(payload))):
            return None
        try:
            claims = json.loads(_unb64(payload))
            client, expires = claims["c"], claims["e"]
            account = claims.get("a", legacy)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not (isinstance(client, str) and isinstance(account, str)):
            return None
        holder = Holder(client, account)
        if not isinstance(expires, int) or expires <= self._clock() or holder not in known:
            return None
        return holder
