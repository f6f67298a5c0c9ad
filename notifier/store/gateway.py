"""What the gateway (the daemon's vendor-compatible endpoint) reads of the state: a watched
job's last answer as the vendor sent it, the key that signs its tokens, and where the lease
holder's gateway is reachable. Shared by both backends through the named queries."""

from __future__ import annotations

import secrets

from notifier.store._mixin import StorePart
from notifier.store.rows import Observation, observation_from_row

#: The name of the key that signs the gateway's access tokens (``gateway_keys``).
GATEWAY_TOKEN_KEY = "tokens"


class GatewayState(StorePart):
    """The gateway's queries of :class:`~notifier.store.base.Store`, kept apart for size."""

    def last_observation(self, job_id: str) -> Observation | None:
        """The job's last answer as the vendor sent it (written by every poll and sweep
        that records one), with the watch's state; None when the job is not watched."""
        row = self._run("last_observation", (job_id,)).fetchone()
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

    def lease_advertise(self, name: str) -> str | None:
        """The advertise URL of the lease's unexpired holder (the database's clock), where a
        standby forwards gateway calls; None when nobody holds it or the holder gave none."""
        row = self._run("lease_advertise", {"name": name}).fetchone()
        return None if row is None or row[0] is None else str(row[0])
