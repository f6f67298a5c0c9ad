"""The vendor lease (which node calls the vendor; its expiry on the database's clock), the
vendor token all nodes share and the lock around fetching one, and what the gateway (the
daemon's vendor-compatible endpoint) reads of the state: a watched job's last answer as the
vendor sent it, the key that signs its tokens, where the lease holder's gateway is."""

from __future__ import annotations

import re
import secrets

from notifier.kinds import DEFAULT_KIND
from notifier.models import DEFAULT_ACCOUNT
from notifier.store.base import StoreBase
from notifier.store.rows import Observation, observation_from_row

#: The name of the key that signs the gateway's access tokens (``gateway_keys``).
GATEWAY_TOKEN_KEY = "tokens"
#: A lease owner is a node name plus ``#`` and a process's random id (12 hex digits: see
#: ``notifier.polling.lease.make_owner``); rows of older versions carry the bare name.
_OWNER_ID = re.compile(r"#[0-9a-f]{12}\Z")


def owner_name(owner: str) -> str:
    """The node name a lease owner stands for: what logs, /healthz and the CLI show."""
    return _OWNER_ID.sub("", owner)


class VendorLease(StoreBase):
    """The ``leases``, ``vendor_token`` and ``gateway_keys`` tables."""

    # -- vendor token ---------------------------------------------------------------------

    def get_token(self, account: str) -> tuple[str, float] | None:
        row = self._run("get_token", (account,)).fetchone()
        return None if row is None else (row[0], float(row[1]))

    def save_token(self, account: str, token: str, expire_at: float) -> None:
        with self.transaction():
            self._run("save_token", (account, token, expire_at, self.now()))

    def save_token_fenced(
        self, account: str, token: str, expire_at: float, *, sent: float, lease: str, owner: str
    ) -> bool:
        """Store a token fetched under the vendor lease, only while ``owner`` still holds
        ``lease`` (the database's clock) and no token fetched later is stored: a fetch that
        outlived its lease (a node frozen mid-fetch) cannot overwrite a newer token. ``sent``:
        :meth:`database_clock` read before the fetch was sent. False when refused."""
        args = {
            "account": account,
            "token": token,
            "expire_at": expire_at,
            "sent": sent,
            "lease": lease,
            "owner": owner,
        }
        with self.transaction():
            return bool(self._run("save_token_fenced", args).fetchall())

    def database_clock(self) -> float:
        """The database's clock, unix seconds (one clock for every node)."""
        return float(self._run("database_clock").fetchone()[0])

    def drop_token(self, account: str, token: str) -> None:
        with self.transaction():
            self._run("drop_token", (account, token))

    def try_token_lock(self) -> bool:
        """Take the cross-process lock around a token fetch, without waiting: False while
        another process (or another holder on this connection) has it. Issuing a token
        revokes the previous one, so whoever holds it re-reads the stored token first."""
        return self.backend.try_token_lock(self._execute)

    def release_token_lock(self) -> None:
        self.backend.release_token_lock()

    # -- lease: which node calls the vendor; expiry on the database's clock ----------------

    def acquire_lease(
        self,
        name: str,
        owner: str,
        ttl: float,
        *,
        force: bool = False,
        advertise: str | None = None,
    ) -> tuple[float, str | None] | None:
        """One UPSERT: ours for ``ttl`` s if free, expired or ours (``force``: in any case) ->
        (seconds left on the database's clock, holder before our tenure); None: held by another.
        A take or renewal writes ``advertise`` (where our gateway is reachable), so the row
        always says the holder's current one."""
        with self.transaction(probe=True):  # once a second at most: no need to fail fast
            args = {"name": name, "owner": owner, "ttl": ttl, "force": int(force)}
            rows = self._run("acquire_lease", {**args, "advertise": advertise}).fetchall()
        return (float(rows[0][0]), rows[0][1]) if rows else None

    def release_lease(self, name: str, owner: str, holdoff: float = 0.0) -> bool:
        with self.transaction(probe=True):
            args = {"name": name, "owner": owner, "holdoff": holdoff}
            return bool(self._run("release_lease", args).fetchall())

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        """(the holder's node name, seconds left on the database's clock), None when nobody
        holds it."""
        row = self.lease_owner(name)
        return None if row is None else (owner_name(row[0]), row[1])

    def lease_owner(self, name: str) -> tuple[str, float] | None:
        """(the owner exactly as written: name and process id, seconds left on the database's
        clock), None when nobody holds it."""
        row = self._run("lease_holder", {"name": name}).fetchone()
        return None if row is None else (str(row[0]), float(row[1]))

    def lease_advertise(self, name: str) -> str | None:
        """The advertise URL of the lease's unexpired holder (the database's clock), where a
        standby forwards gateway calls; None when nobody holds it or the holder gave none."""
        row = self._run("lease_advertise", {"name": name}).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def lease_census(self) -> list[tuple[str, str, float]]:
        """(name, owner, seconds left) of every unexpired lease and presence row, by name:
        how the accounts' leases are spread over the live nodes."""
        rows = self._run("lease_census", {}).fetchall()
        return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    # -- the gateway ----------------------------------------------------------------------

    def last_observation(
        self, job_id: str, *, kind: str = DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> Observation | None:
        """The job's last answer as the vendor sent it (written by every poll and sweep
        that records one), with the watch's state; None when ``account`` does not watch it
        (another account's watch of the same id is another job)."""
        row = self._run("last_observation", (account, kind, job_id)).fetchone()
        return None if row is None else observation_from_row(row)

    def gateway_key(self) -> bytes:
        """The secret that signs the gateway's tokens: 32 random bytes made by whoever asks
        first, the same for every process and node on this state ever after (a token one
        node issued is valid on all). Two first askers at once agree: the insert keeps the
        first key, and the read after it, in the same transaction, sees that one."""
        secret = self._one("get_gateway_key", GATEWAY_TOKEN_KEY)
        if secret is None:
            args = {
                "name": GATEWAY_TOKEN_KEY,
                "secret": secrets.token_bytes(32).hex(),
                "now": self.now(),
            }
            with self.transaction():
                self._run("add_gateway_key", args)
                secret = self._one("get_gateway_key", GATEWAY_TOKEN_KEY)
        return bytes.fromhex(str(secret))
