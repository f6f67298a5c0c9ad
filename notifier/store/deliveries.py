"""The events and their deliveries: recording an event with one delivery per endpoint (a
watch's end, or the daemon's own), what is due, replays, parked endpoints, and the claims
and results of attempts.

Delivery claims: several nodes deliver from one database, never one delivery on two at once.
A due delivery is claimed (``claimed_by``, ``claim_expires`` on the database's clock, a
``claim_token`` bumped by every claim) before its attempt; the result is written only while
the row still carries that token, and writing it consumes the claim: the attempt's history
row names the claim and whether the write was applied, so a write retried after its answer
was lost applies nothing twice. A claim of a node that died returns when it lapses. The
statements are the "delivery claims" section of each dialect's ``queries.sql`` (PostgreSQL
picks the rows with ``FOR UPDATE SKIP LOCKED``) and the result writes (``delivery_*``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from notifier.kinds import DEFAULT_KIND, Phase
from notifier.models import DEFAULT_ACCOUNT, DeliveryState, Event, JobDetail, WatchState
from notifier.store.base import StoreBase
from notifier.store.rows import (
    ENDPOINT_NOT_CONFIGURED,
    ENDPOINT_REMOVED,
    DueDelivery,
    due_from_row,
    dump_data,
)


class Deliveries(StoreBase):
    """The ``events``, ``deliveries`` and ``delivery_attempts`` tables (and a watch's end,
    which records its event)."""

    def record_terminal(self, detail: JobDetail, event: Event, endpoints: Sequence[str]) -> bool:
        """Finish the watch, record the event and queue its deliveries: one transaction.

        Returns False when nothing new is queued: the job already had this event, or its
        watch is no longer active (expired, removed or finished while this answer was on its
        way: one event per job, and none for a watch that is gone). The watch is the
        detail's account's and kind's; succeeded or failed is its phase (each kind has codes
        of its own).
        """
        now = self.now()
        state = WatchState.SUCCEEDED if detail.phase is Phase.SUCCEEDED else WatchState.FAILED
        with self.transaction():
            finished = self._run(
                "finish_watch",
                {
                    "account": detail.account,
                    "kind": detail.kind,
                    "job_id": detail.id,
                    "state": state.value,
                    "status": detail.status,
                    "phase": None if detail.phase is None else detail.phase.value,
                    "progress": detail.progress,
                    "msg": detail.msg,
                    "create_time": detail.create_time,
                    "now": now,
                    "polled": 1,
                    "error": None,
                    "observed": 1,
                    "last_data": dump_data(detail.raw),
                },
            )
            if not finished.rowcount:
                return False
            return self._insert_event(event, endpoints, now, detail.kind, detail.account)

    def _insert_event(
        self,
        event: Event,
        endpoints: Sequence[str],
        now: float,
        kind: str | None,
        account: str | None,
    ) -> bool:
        """The event and one delivery per endpoint; False if the job had this event already
        (an event made again has its id: its row and deliveries stand, no seq is taken; one
        the state lost, on a promoted replica, is recorded and delivered under that id).
        ``kind``, ``account``: its watch's (a job event's row names the account of the watch
        it ended); an operational event has no kind, and the account it concerns, if any."""
        self._run("lock_event_order")
        inserted = self._run(
            "insert_event",
            (
                event.event_id,
                event.job_id,
                event.type,
                event.created_at,
                event.body,
                event.last_seen_running_at,
                kind,
                account,
            ),
        ).rowcount
        if not inserted:
            return False
        for endpoint in endpoints:
            self._run("insert_delivery", (event.event_id, endpoint, now, now))
        return True

    def record_operational(self, event: Event, endpoints: Sequence[str]) -> None:
        """An event about the daemon itself and its deliveries: one transaction."""
        with self.transaction():
            self._insert_event(event, endpoints, self.now(), None, event.account)

    def reject_watch(
        self,
        job_id: str,
        reason: str,
        event: Event,
        endpoints: Sequence[str],
        *,
        kind: str = DEFAULT_KIND,
        account: str = DEFAULT_ACCOUNT,
    ) -> bool:
        """Stop polling a job the vendor rejects (unknown id), ``reason`` kept as its note,
        record its ``lip_sync.rejected`` event and queue its deliveries: one transaction.
        The watch is ``account``'s, and so is the event's row. False if the watch is not
        active (nothing recorded)."""
        now = self.now()
        unseen = dict.fromkeys(("status", "phase", "progress", "create_time", "last_data"))
        args = {**unseen, "account": account, "kind": kind, "job_id": job_id}
        args |= {"msg": reason, "error": reason}
        args["now"] = now
        args |= {"state": WatchState.REJECTED.value, "polled": 1, "observed": 0}
        with self.transaction():
            if not self._run("finish_watch", args).rowcount:
                return False
            self._insert_event(event, endpoints, now, kind, account)
        return True

    def expire_watch(
        self,
        job_id: str,
        event: Event,
        endpoints: Sequence[str],
        cutoff: float,
        *,
        kind: str = DEFAULT_KIND,
        account: str = DEFAULT_ACCOUNT,
    ) -> bool:
        """Expire one watch added by ``cutoff`` (its last look said not finished), record its
        ``lip_sync.expired`` event and queue its deliveries: one transaction. The watch is
        ``account``'s, and so is the event's row. False if it is not active, or younger than
        that by the stored time (a clock step moved it)."""
        now = self.now()
        with self.transaction():
            args: dict[str, object] = {"account": account, "kind": kind, "job_id": job_id}
            args |= {"now": now, "cutoff": cutoff}
            if not self._run("expire_watch", args).rowcount:
                return False
            self._insert_event(event, endpoints, now, kind, account)
        return True

    def due_deliveries(
        self, endpoint: str, now: float, limit: int, exclude: frozenset[int] = frozenset()
    ) -> list[DueDelivery]:
        rows = self._run("due_deliveries", (endpoint, now, limit + len(exclude))).fetchall()
        due = [due_from_row(row) for row in rows if row["id"] not in exclude]
        return due[:limit]

    def replay(
        self,
        event_ids: Iterable[str],
        route: Callable[[str, tuple[str, ...] | None, str | None], Sequence[str]] | None = None,
        endpoint: str | None = None,
    ) -> dict[str, int]:
        """Queue every delivery of these events again, from the first retry step.

        ``route(event_type, watch_endpoints, account)`` names the endpoints the event (of
        that account: None, of none) goes to now;
        their missing deliveries are created (an event whose routing found no endpoint has
        none). ``endpoint``: only the delivery to that endpoint. Returns the number of
        deliveries queued per event. The attempt history is kept.
        """
        now = self.now()
        result = {}
        with self.transaction():
            for event_id in event_ids:
                row = self._run("get_event", (event_id,)).fetchone()
                if row is not None and route is not None:
                    named = row["watch_endpoints"]
                    watch_endpoints = None if named is None else tuple(json.loads(named))
                    for name in route(row["type"], watch_endpoints, row["account"]):
                        if endpoint is None or name == endpoint:
                            self._run("insert_delivery", (event_id, name, now, now))
                # Counts the rows just created too.
                args = {"event_id": event_id, "now": now, "endpoint": endpoint}
                query = "replay_event" if endpoint is None else "replay_event_endpoint"
                result[event_id] = self._run(query, args).rowcount
        return result

    def replay_dead(self) -> int:
        with self.transaction():
            return int(self._run("replay_dead", {"now": self.now()}).rowcount)

    def park_unconfigured(
        self, configured: Collection[str], removed: Collection[str] = ()
    ) -> dict[str, int]:
        """Pending deliveries of endpoints not in ``configured`` become dead, with the reason
        "endpoint removed" (for names in ``removed``) or "endpoint not configured".

        Returns {endpoint: rows parked}. A read first: nothing is written when all is well.
        """
        stray = [row[0] for row in self._run("pending_endpoints") if row[0] not in configured]
        parked: dict[str, int] = {}
        if not stray:
            return parked
        with self.transaction():
            for endpoint in stray:
                reason = ENDPOINT_REMOVED if endpoint in removed else ENDPOINT_NOT_CONFIGURED
                count = self._run(
                    "park_endpoint", {"endpoint": endpoint, "reason": reason}
                ).rowcount
                if count:
                    parked[endpoint] = count
        return parked

    def revive_endpoints(self, configured: Iterable[str]) -> dict[str, int]:
        """Deliveries parked for want of their endpoint, which is configured again: pending
        from the first step. Returns {endpoint: rows revived}."""
        now = self.now()
        revived: dict[str, int] = {}
        with self.transaction():
            for endpoint in configured:
                count = self._run("revive_endpoint", {"endpoint": endpoint, "now": now}).rowcount
                if count:
                    revived[endpoint] = count
        return revived

    # -- delivery claims ------------------------------------------------------------------

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
        if "claim_and_read_deliveries" in self.backend.dialect.queries:
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
            claimed = self._run("claimed_deliveries", {"ids": json.dumps(list(granted))})
            return [due_from_row(row, *granted[row["id"]]) for row in claimed.fetchall()]

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
        if combined in self.backend.dialect.queries:
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
