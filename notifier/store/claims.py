"""Delivery claims: several nodes deliver from one database, never one delivery on two at once.

A due delivery is claimed (``claimed_by``, ``claim_expires`` on the database's clock, a
``claim_token`` bumped by every claim) before its attempt; the result is written only while
the row still carries that token, and writing it releases the claim. A claim of a node that
died returns when it lapses. The statements are the "delivery claims" section of each
dialect's ``queries.sql`` (PostgreSQL picks the rows with ``FOR UPDATE SKIP LOCKED``).

A mixin of :class:`~notifier.store.base.Store`, kept apart to keep that module short.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from notifier.store.rows import DueDelivery, due_from_row

if TYPE_CHECKING:
    from notifier.store.schema import Dialect


class DeliveryClaims:
    if TYPE_CHECKING:

        def transaction(self, *, probe: bool = False) -> AbstractContextManager[None]: ...

        def _run(self, name: str, args: Any = ()) -> Any: ...

        def _check_failing(self) -> None: ...

        dialect: ClassVar[Dialect]

    def claim_due_deliveries(
        self,
        endpoint: str,
        node: str,
        now: float,
        limit: int,
        ttl: float,
        exclude: Collection[int] = (),
    ) -> list[DueDelivery]:
        """Claim up to ``limit`` deliveries of ``endpoint`` due at ``now`` that no node holds
        (or whose claim lapsed) for ``node``, for ``ttl`` seconds of the database's clock.

        ``exclude``: this node's attempts in flight (their claims are live anyway, and one
        whose claim lapsed must not be claimed again under it). Each row carries its claim
        token and the seconds it had left when granted. Atomic: two stores (nodes) on one
        database never get the same row while its claim is live.
        """
        args = {
            "endpoint": endpoint,
            "node": node,
            "now": now,
            "limit": limit,
            "ttl": ttl,
            "exclude": json.dumps(list(exclude)),
        }
        if "claim_and_read_deliveries" in self.dialect.queries:
            # One statement (PostgreSQL): claim and read in one round trip, atomic without a
            # BEGIN; with SKIP LOCKED a claim that finds nothing costs no more than a look.
            self._check_failing()
            rows = self._run("claim_and_read_deliveries", args).fetchall()
            return [due_from_row(row, row["claim_token"], row["claim_left"]) for row in rows]
        if self._run("any_claimable", args).fetchone() is None:
            return []  # the usual case of a tick: no write lock taken
        with self.transaction():
            granted = {
                row["id"]: (row["claim_token"], row["claim_left"])
                for row in self._run("claim_due_deliveries", args).fetchall()
            }
            if not granted:
                return []
            rows = self._run("claimed_deliveries", {"ids": json.dumps(list(granted))})
            return [due_from_row(row, *granted[row["id"]]) for row in rows.fetchall()]

    def release_every_claim(self) -> int:
        """Only for a state no other daemon can use (a SQLite file under its instance lock):
        a predecessor killed mid-attempt left claims that nobody will ever release."""
        with self.transaction():
            return int(self._run("release_every_claim").rowcount)

    def release_claims(self, claims: Iterable[tuple[int, int]]) -> int:
        """Give up claims, (delivery id, claim token) each, that still hold; how many did.

        A claim that lapsed and was taken by another node is left alone: it is theirs."""
        released = 0
        with self.transaction():
            for delivery_id, claim in claims:
                args = {"id": delivery_id, "claim": claim}
                released += self._run("release_claim", args).rowcount
        return released
