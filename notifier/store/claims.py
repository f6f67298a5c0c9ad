"""Delivery claims: several nodes deliver from one database, never one delivery on two at once.

A due delivery is claimed (``claimed_by``, ``claim_expires`` on the database's clock, a
``claim_token`` bumped by every claim) before its attempt; the result is written only while
the row still carries that token, and writing it consumes the claim: the attempt's history
row names the claim and whether the write was applied, so a write retried after its answer
was lost applies nothing twice. A claim of a node that died returns when it lapses. The
statements are the "delivery claims" section of each dialect's ``queries.sql`` (PostgreSQL
picks the rows with ``FOR UPDATE SKIP LOCKED``) and the result writes (``delivery_*``).

A mixin of :class:`~notifier.store.base.Store`, kept apart to keep that module short.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from notifier.models import DeliveryState
from notifier.store.rows import DueDelivery, due_from_row

if TYPE_CHECKING:
    from notifier.store.schema import Dialect


class DeliveryClaims:
    if TYPE_CHECKING:

        def transaction(self, *, probe: bool = False) -> AbstractContextManager[None]: ...

        def _run(self, name: str, args: Any = ()) -> Any: ...

        def _check_failing(self) -> None: ...

        def now(self) -> float: ...

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

    # -- results: written under the attempt's claim, once ----------------------------------

    def delivery_succeeded(
        self,
        delivery_id: int,
        status: int | None,
        *,
        generation: int | None = None,
        started: float | None = None,
        claim: int | None = None,
    ) -> bool:
        """Record a successful attempt; False when the row was reset meanwhile (replay)."""
        now = self.now()
        args = {
            "id": delivery_id,
            "now": now,
            "status": status,
            "generation": generation,
            "started": now if started is None else started,
            "claim": claim,
        }
        return self._record_result("delivery_succeeded", args, None, "delivered")

    def _record_result(
        self, query: str, args: dict[str, Any], error: str | None, outcome: str
    ) -> bool:
        """The delivery's new state and its attempt in the history a replay does not reset
        (``deliveries show``), atomically; False when the row was not updated.

        Under a claim the write is applied once: it consumes the claim, and its attempt row
        (unique per delivery and claim) says whether it was applied. A write retried because
        its answer was lost after the COMMIT went through finds that row and returns what
        the first write did, instead of counting the attempt again (or, for a final failure,
        calling the delivery superseded and so never reporting it dead).

        A dialect with ``<query>_with_attempt`` does both in one statement (PostgreSQL: a
        data-modifying CTE, one round trip instead of four: BEGIN, two statements, COMMIT)."""
        attempt = {**args, "error": error, "outcome": outcome}
        combined = f"{query}_with_attempt"
        if combined in self.dialect.queries:
            self._check_failing()
            if self._run(combined, attempt).fetchone()[0] > 0:
                return True
            # Not applied, or a first write still running when this retry began (its
            # snapshot could not see it): a fresh look at what the claim's write did.
            return args["claim"] is not None and self._applied_under(args) is True
        with self.transaction():
            if args["claim"] is not None:
                earlier = self._applied_under(args)
                if earlier is not None:
                    return earlier
            applied = self._run(query, args).rowcount > 0
            self._run("insert_attempt", {**attempt, "applied": int(applied)})
        return bool(applied)

    def _applied_under(self, args: dict[str, Any]) -> bool | None:
        """Whether the result written under this claim changed the delivery; None: none yet."""
        row = self._run("attempt_of_claim", {"id": args["id"], "claim": args["claim"]}).fetchone()
        return None if row is None else bool(row[0])

    def delivery_failed(
        self,
        delivery_id: int,
        status: int | None,
        error: str,
        next_attempt_at: float | None,
        *,
        generation: int | None = None,
        deferred: bool = False,
        started: float | None = None,
        claim: int | None = None,
    ) -> bool:
        """Record a failed attempt; ``next_attempt_at=None`` makes the delivery dead.

        False when the row was reset (replay) or parked (endpoint removed) meanwhile: the
        reset wins. ``deferred``: the retry follows the receiver's Retry-After.
        """
        state = DeliveryState.PENDING if next_attempt_at is not None else DeliveryState.DEAD
        now = self.now()
        args = {
            "id": delivery_id,
            "state": state.value,
            "now": now,
            "status": status,
            "error": error,
            "next_attempt_at": next_attempt_at,
            "generation": generation,
            "deferred": int(deferred),
            "started": now if started is None else started,
            "claim": claim,
        }
        outcome = "failed" if next_attempt_at is not None else "dead"
        return self._record_result("delivery_failed", args, error, outcome)
