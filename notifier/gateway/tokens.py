"""Gateway tokens: what an application gets instead of the vendor's token.

A token is a signed statement "client C, valid until T", HMAC'd with a key kept in the
state (``Store.gateway_key``), so every node and every restart accepts it without a table
of tokens, and issuing one never revokes another. A client removed from the config loses
its tokens at once: the name in a token must still be configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence

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


class Credentials:
    """Who may get a token: ``(client name, app_id, secret_key)`` triples."""

    def __init__(self, entries: Sequence[tuple[str, str, str]]) -> None:
        self._entries = [
            (name, _digest(app_id), _digest(secret)) for name, app_id, secret in entries
        ]
        self.names = frozenset(name for name, _a, _s in entries)

    def match(self, app_id: str, secret_key: str) -> str | None:
        """The client these credentials are, or None; every entry is compared in full,
        whichever matches, so the time taken says nothing about which part was wrong."""
        given_id, given_secret = _digest(app_id), _digest(secret_key)
        found: str | None = None
        for name, known_id, known_secret in self._entries:
            same_id = hmac.compare_digest(given_id, known_id)
            same_secret = hmac.compare_digest(given_secret, known_secret)
            if same_id & same_secret and found is None:
                found = name
        return found


class GatewayTokens:
    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, client: str) -> tuple[str, int]:
        """A new token for ``client`` and its expiry as a unix timestamp (``expire_in``)."""
        expires = int(self._clock()) + TOKEN_LIFE
        body = json.dumps({"c": client, "e": expires, "n": secrets.token_hex(8)})
        payload = _b64(body.encode())
        return f"{_PREFIX}.{payload}.{self._mac(payload)}", expires

    def client_of(self, token: str, known: frozenset[str]) -> str | None:
        """The client a valid, unexpired token was issued to (still in ``known``), or None."""
        prefix, _, rest = token.partition(".")
        payload, _, mac = rest.partition(".")
        if prefix != _PREFIX or not payload or not mac or len(token) > 512:
            return None
        if not hmac.compare_digest(_digest(mac), _digest(self._mac(payload))):
            return None
        try:
            claims = json.loads(_unb64(payload))
            client, expires = claims["c"], claims["e"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(client, str) or not isinstance(expires, int):
            return None
        if expires <= self._clock() or client not in known:
            return None
        return client
