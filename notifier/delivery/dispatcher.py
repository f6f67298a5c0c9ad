"""Sends due deliveries, each endpoint with its own bounded lane.

An endpoint's lane holds at most ``concurrency`` attempts in flight, and due work is picked
per endpoint, so a slow or dead receiver fills only its own lane and never delays the others.

Several nodes may deliver from one database: due work is *claimed* (for the longest attempt
plus a margin, on the database's clock) before it is sent, so no delivery is in flight on two
nodes at once; a result is written only while this attempt's claim still holds, and writing
it consumes the claim (a write retried after a lost answer is applied once).

This node keeps each claim's deadline on the steady clock the vendor lease uses
(CLOCK_BOOTTIME: it runs through a host suspend, so a node that wakes up finds its claims
lapsed rather than paused). The deadline is checked as the attempt starts and again as the
request's first byte is about to be written (the sender's gate, after any wait for a Slack
URL's pacing or a connection): a request that could outlive the claim is not sent, and that
is no attempt (nothing recorded, the claim given back, the delivery claimed again).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier._tasks import settle, steady_clock
from notifier.delivery.retry import plan_retry
from notifier.delivery.senders import EndpointSettings, Gate, Sender, Withheld
from notifier.log import LineBudget, get_logger
from notifier.models import Event, SendResult
from notifier.store import DB_ERRORS, DueDelivery, Store

log = get_logger(component="dispatcher")

#: A result that cannot be written is written again after this, doubling up to the max.
WRITE_RETRY_FIRST = 0.5
WRITE_RETRY_MAX = 10.0
#: A claim outlasts the attempt's longest duration by this much: time to write the result,
#: and to spare for the database's clock and ours running at slightly different rates.
CLAIM_MARGIN = 5.0
#: A failing endpoint's failed attempts are logged at most this often (each is in
#: `deliveries show` and the metrics anyway).
FAILURE_LOG_EVERY = 1.0
#: The longest attempt of a sender that does not say (``longest_attempt``).
DEFAULT_LONGEST_ATTEMPT = 30.0


#: What a recorded attempt came to: ``delivered``, ``failed`` or ``dead``, and its error.
Outcome = tuple[str, str | None]
Reporter = Callable[[str, Event, str, str | None, int], None]
#: Told about claims: endpoint, what happened (``claimed``; ``expired``: too little time was
#: left to start the attempt or to write its request; ``claim_lost`` / ``reset``: a result
#: was not written because another node took the delivery over, or a replay or park reset
#: it), how many.
ClaimObserver = Callable[[str, str, int], None]


def default_node() -> str:
    """The name this process claims deliveries under when none is configured."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: The senders for a set of endpoints: {endpoint name: (sender, concurrency)}.
Lanes = Mapping[str, tuple[Sender, int]]
#: Makes (or keeps) the senders of the configured endpoints (the daemon's sender pool).
LaneSource = Callable[[Sequence[EndpointSettings]], Lanes]


@dataclass(frozen=True)
class DispatcherSettings:
    """``delivery.retry_schedule`` and the endpoints to deliver to."""

    retry_schedule: tuple[float, ...]
    endpoints: tuple[EndpointSettings, ...]


@dataclass
class Lane:
    name: str
    sender: Sender
    concurrency: int
    in_flight: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    #: Lanes that send through this one's sender (one Slack URL for several endpoints).
    shared_by: int = 1

    @property
    def longest_attempt(self) -> float:
        """How long an attempt may take from its start: the sender's longest, times the
        lanes sharing it (a Slack sender sends one message at a time, so an attempt may
        first wait for the other lanes' one each)."""
        longest = getattr(self.sender, "longest_attempt", None)
        return (DEFAULT_LONGEST_ATTEMPT if longest is None else float(longest)) * self.shared_by


class Dispatcher:
    def __init__(
        self,
        store: Store,
        settings: DispatcherSettings,
        senders: LaneSource,
        *,
        clock: Callable[[], float] = time.time,
        observer: Callable[[str, DueDelivery, SendResult, float], None] | None = None,
        reporter: Reporter | None = None,
        write_retry: tuple[float, float] = (WRITE_RETRY_FIRST, WRITE_RETRY_MAX),
        node: str | None = None,
        monotonic: Callable[[], float] = steady_clock,
        claim_observer: ClaimObserver | None = None,
        claim_margin: float = CLAIM_MARGIN,
    ) -> None:
        """``node``: the name this process claims deliveries under (unique per process);
        ``monotonic``: the clock claim deadlines are kept on (steady, through suspends);
        ``senders``: what turns the settings' endpoints into lanes (here and on
        :meth:`configure`)."""
        self.store = store
        self._clock = clock
        self.node = default_node() if node is None else node
        self._monotonic = monotonic
        self.claim_observer = claim_observer
        self._claim_margin = claim_margin
        #: Claims this node holds whose attempt has not settled them: {delivery id: token}.
        self._claims: dict[int, int] = {}
        self._rng = random.Random()
        self._lanes: dict[str, Lane] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._kick_pending = False
        self._closing = False
        self._park_failing = False
        self._write_retry = write_retry
        #: Endpoints a reload removed: their stray deliveries are "endpoint removed".
        self._removed: set[str] = set()
        #: A failing endpoint's failed attempts: one line per FAILURE_LOG_EVERY each.
        self._failure_lines = LineBudget(FAILURE_LOG_EVERY, monotonic)
        #: Attempts whose result is held in memory because the store refused the write.
        self.unrecorded = 0
        #: Writes of held results tried again (and failed) so far.
        self.write_retries = 0
        #: Why no attempt may start now (this node's clock is off the database's), or None.
        self.paused: str | None = None
        self.retry_schedule: list[float] = []
        self.observer = observer
        #: Told each recorded result (operational events): endpoint, event, outcome
        #: (delivered, failed, dead), error, attempts so far.
        self.reporter = reporter
        self._senders = senders
        self.configure(settings)

    def configure(self, settings: DispatcherSettings) -> None:
        """A reload: the endpoints' lanes (senders from the ``senders`` source) and the
        retry schedule."""
        self.set_lanes(self._senders(settings.endpoints), settings.retry_schedule)

    def set_lanes(self, lanes: Lanes, schedule: Sequence[float]) -> None:
        """(Re)build the lanes; attempts in flight finish undisturbed and are not repeated.

        Deliveries of an endpoint that is gone are parked (dead, "endpoint removed"), and
        parked ones whose endpoint is back become pending: nothing waits for a lane that
        does not exist.
        """
        old = self._lanes
        self._retiring = {task for task in self._retiring if not task.done()}
        for name, lane in old.items():
            if name not in lanes:
                self._retiring.update(lane.in_flight.values())
        # A lane that stays shares its in-flight map, so nothing is picked twice.
        sharing = Counter(id(sender) for sender, _concurrency in lanes.values())
        self._lanes = {
            name: Lane(
                name,
                sender,
                concurrency,
                old[name].in_flight if name in old else {},
                sharing[id(sender)],
            )
            for name, (sender, concurrency) in lanes.items()
        }
        self.retry_schedule = list(schedule)
        self._removed = (self._removed | set(old)) - set(lanes)
        try:
            revived = self.store.revive_endpoints(self._lanes)
        except DB_ERRORS as exc:
            log.error("cannot revive parked deliveries", error=str(exc))
            revived = {}
        for endpoint, count in revived.items():
            log.info(
                "endpoint configured again; its parked deliveries are pending",
                endpoint=endpoint,
                deliveries=count,
            )
        self._park()

    def _park(self) -> None:
        try:
            parked = self.store.park_unconfigured(self._lanes, self._removed)
        except DB_ERRORS as exc:
            if not self._park_failing:  # once, not every tick
                log.error("cannot park deliveries of unconfigured endpoints", error=str(exc))
            self._park_failing = True
            return
        self._park_failing = False
        for endpoint, count in parked.items():
            log.warning(
                "deliveries parked: the endpoint is not configured",
                endpoint=endpoint,
                deliveries=count,
                reason="endpoint removed"
                if endpoint in self._removed
                else "endpoint not configured",
                hint="they are sent when the endpoint is configured again (reload)",
            )

    @property
    def in_flight(self) -> int:
        return sum(len(lane.in_flight) for lane in self._lanes.values())

    def kick(self) -> None:
        """Look for due work soon (new events, a freed slot) instead of at the next tick."""
        if self._kick_pending or self._closing:
            return
        self._kick_pending = True
        asyncio.get_running_loop().call_soon(self._kicked)

    def _kicked(self) -> None:
        self._kick_pending = False
        if self._closing:
            return  # stopping: the store may be closed already
        try:
            self._fill()
        except DB_ERRORS as exc:
            log.warning("cannot claim due deliveries; the next tick tries again", error=str(exc))

    async def tick(self) -> None:
        if self._closing:
            return
        self._park()
        self._fill()

    def _fill(self) -> None:
        if self.paused is not None:
            return  # nothing is claimed: the other nodes send it
        now = self._clock()
        for lane in self._lanes.values():
            free = lane.concurrency - len(lane.in_flight)
            if free <= 0:
                continue
            longest = lane.longest_attempt
            # Before the claim is sent: time the request spends on its way (or a freeze
            # right after it) comes off the claim, never on top of it.
            asked = self._monotonic()
            claimed = self.store.claim_due_deliveries(
                lane.name, self.node, now, free, longest + self._claim_margin, lane.in_flight
            )
            for due in claimed:
                assert due.claim is not None and due.claim_left is not None
                self._claims[due.id] = due.claim
                task = asyncio.create_task(
                    self._attempt(lane, due, asked + due.claim_left), name=f"deliver {due.id}"
                )
                lane.in_flight[due.id] = task
            if claimed:
                self._observe_claims(lane.name, "claimed", len(claimed))

    def _observe_claims(self, endpoint: str, what: str, count: int = 1) -> None:
        if self.claim_observer is not None:
            self.claim_observer(endpoint, what, count)

    async def _attempt(self, lane: Lane, due: DueDelivery, deadline: float) -> None:
        """One attempt under the claim that lasts until ``deadline`` (this node's monotonic
        clock); not started when the claim would lapse before the attempt could end."""
        attempt = due.attempts + 1
        entry_log = log.bind(
            endpoint=lane.name,
            event_id=due.event.event_id,
            job_id=due.event.job_id,
            attempt=attempt,
        )
        left = deadline - self._monotonic()
        if left < lane.longest_attempt:
            # Frozen (or stalled) since the claim: another node may hold the delivery now.
            # Claim it again (at the next tick) rather than send on a claim that may lapse.
            lane.in_flight.pop(due.id, None)
            self._give_back(
                lane,
                due,
                entry_log,
                "claim too short to start the attempt; claiming the delivery again",
                claim_left=round(left, 3),
                longest_attempt=lane.longest_attempt,
            )
            return
        started = time.monotonic()
        started_at = self._clock()
        withheld = False
        try:
            try:
                result = await lane.sender.send(due.event, gate=self._gate(deadline))
            except asyncio.CancelledError:
                raise
            except Withheld as stopped:
                # Frozen or held up (pacing, a connection) since the start: nothing was sent.
                # Claimed again at the next tick, as when too little is left at the start.
                withheld = True
                self._give_back(
                    lane,
                    due,
                    entry_log,
                    "claim too short to send the request; claiming the delivery again",
                    reason=str(stopped),
                )
                return
            except Exception as exc:  # a sender bug is a failed attempt, not a dead daemon
                entry_log.exception("sender crashed")
                result = SendResult(ok=False, error=f"internal error: {type(exc).__name__}")
            elapsed = time.monotonic() - started
            if self.observer is not None:
                self.observer(lane.name, due, result, elapsed)
            try:
                recorded = self._record(lane.name, due, result, attempt, started_at, entry_log)
            except DB_ERRORS as exc:
                # The row is still due: dropping it now would send it again at once, in a
                # loop. Hold the result and keep the delivery in its lane until it is written.
                recorded = await self._record_later(
                    lane.name, due, result, attempt, started_at, entry_log, exc
                )
            self._claims.pop(due.id, None)
            self._report(lane.name, due, recorded, attempt, entry_log)
        finally:
            lane.in_flight.pop(due.id, None)
            if not self._closing and not withheld:
                self.kick()

    def _gate(self, deadline: float) -> Gate:
        """The sender's last look before the request is written: the claim (until
        ``deadline`` on this node's steady clock) must outlast what the request may still
        take, or another node may take the delivery while it is in flight here."""

        def gate(within: float) -> None:
            left = deadline - self._monotonic()
            if left < within:
                raise Withheld(
                    f"the claim has {max(left, 0.0):.3f}s left, the request may take {within:.3f}s"
                )

        return gate

    def _give_back(
        self, lane: Lane, due: DueDelivery, bound: Any, message: str, **fields: Any
    ) -> None:
        """An attempt not made (nothing sent, nothing recorded): its claim is released, or
        left to lapse when the store cannot take the write, so it is claimed again."""
        self._observe_claims(lane.name, "expired")
        bound.info(message, **fields)
        try:
            self._settle_claim(due)
        except DB_ERRORS as exc:
            bound.warning("cannot release the claim; it lapses", error=str(exc))

    async def _record_later(
        self,
        endpoint: str,
        due: DueDelivery,
        result: SendResult,
        attempt: int,
        started_at: float,
        bound: Any,
        exc: BaseException,
    ) -> Outcome | None:
        if not self.unrecorded:
            log.error(
                "cannot record delivery results; holding them and retrying the write "
                "(their deliveries are not sent again meanwhile)",
                error=str(exc) or type(exc).__name__,
            )
        self.unrecorded += 1
        delay, longest = self._write_retry
        try:
            while True:
                await asyncio.sleep(delay)
                try:
                    recorded = self._record(endpoint, due, result, attempt, started_at, bound)
                    break
                except DB_ERRORS:
                    self.write_retries += 1
                    delay = min(delay * 2, longest)
        except asyncio.CancelledError:
            bound.warning("stopping with a result not recorded; the delivery is sent again later")
            raise
        finally:
            self.unrecorded -= 1
        if not self.unrecorded:
            log.info("delivery results recorded again")
        return recorded

    def _record(
        self,
        endpoint: str,
        due: DueDelivery,
        result: SendResult,
        attempt: int,
        started_at: float,
        bound: Any,
    ) -> Outcome | None:
        """Write the result (only under this attempt's claim); what it came to, or None when
        a replay or park superseded it, or the claim lapsed and another node took over."""
        if result.ok:
            if self.store.delivery_succeeded(
                due.id,
                result.status,
                generation=due.generation,
                started=started_at,
                claim=due.claim,
            ):
                bound.info("delivered", status=result.status)
                return ("delivered", None)
            self._superseded(endpoint, due, bound, result)
            return None
        first = started_at if due.first_attempt_at is None else due.first_attempt_at
        retry = plan_retry(
            attempt,
            result,
            self.retry_schedule,
            self._rng.random(),
            deferred=due.deferred,
            elapsed=self._clock() - first,
        )
        error = result.error or (f"HTTP {result.status}" if result.status else "failed")
        if retry is None:
            if not self.store.delivery_failed(
                due.id,
                result.status,
                error,
                None,
                generation=due.generation,
                started=started_at,
                claim=due.claim,
            ):
                self._superseded(endpoint, due, bound, result)
                return None
            bound.error(
                "delivery dead",
                status=result.status,
                error=error,
                permanent=result.permanent,
                hint="fix the endpoint, then `chanjing-notifier deliveries replay --dead`",
            )
            return ("dead", error)
        if not self.store.delivery_failed(
            due.id,
            result.status,
            error,
            self._clock() + retry.delay,
            generation=due.generation,
            deferred=retry.deferred,
            started=started_at,
            claim=due.claim,
        ):
            self._superseded(endpoint, due, bound, result)
            return None
        # An endpoint that is down fails every delivery at every attempt: the others at debug.
        held_back = self._failure_lines.take(endpoint)
        (bound.debug if held_back is None else bound.warning)(
            "delivery failed; will retry",
            status=result.status,
            error=error,
            retry_in=round(retry.delay, 1),
            retry_after=retry.deferred or None,
            **({"not_logged_since": held_back} if held_back else {}),
        )
        return ("failed", error)

    def _report(
        self, endpoint: str, due: DueDelivery, recorded: Outcome | None, attempt: int, bound: Any
    ) -> None:
        """Tell the reporter a result that was recorded (not one a replay superseded)."""
        if self.reporter is None or recorded is None:
            return
        try:
            self.reporter(endpoint, due.event, recorded[0], recorded[1], attempt)
        except Exception:  # a reporting bug must not undo a recorded result
            bound.exception("cannot report the delivery result")

    def _settle_claim(self, due: DueDelivery) -> bool:
        """Release this attempt's claim if it still holds; False when it was lost (it
        lapsed and another node took the delivery over)."""
        self._claims.pop(due.id, None)
        if due.claim is None:
            return True
        return self.store.release_claims([(due.id, due.claim)]) > 0

    def _superseded(self, endpoint: str, due: DueDelivery, bound: Any, result: SendResult) -> None:
        """A result the store did not take. The claim is given up at once (a replay is
        sent again now, not when the claim lapses)."""
        if self._settle_claim(due):
            self._observe_claims(endpoint, "reset")
            bound.info(
                "attempt result not recorded: the delivery was replayed or parked meanwhile",
                ok=result.ok,
                status=result.status,
            )
            return
        self._observe_claims(endpoint, "claim_lost")
        bound.info(
            "attempt result not recorded: the claim lapsed and another node took the "
            "delivery over; its result stands",
            ok=result.ok,
            status=result.status,
        )

    async def drain(self, grace: float) -> None:
        """Give attempts in flight up to ``grace`` seconds, then cancel them (they stay due).

        No new attempt starts and no kick runs from here on: the store is closed next.
        """
        self._closing = True
        tasks = [t for lane in self._lanes.values() for t in lane.in_flight.values()]
        await settle([*tasks, *self._retiring], grace)
        self.release_claims()

    def release_claims(self) -> None:
        """Give up the claims of attempts cut short, so another node takes them at once
        (after a kill they return when they lapse)."""
        if not self._claims:
            return
        held, self._claims = self._claims, {}
        try:
            released = self.store.release_claims(held.items())
        except DB_ERRORS as exc:
            log.warning(
                "cannot release delivery claims; they lapse by themselves",
                claims=len(held),
                error=str(exc),
            )
            return
        log.info("delivery claims released", claims=len(held), released=released)
