"""Sends due deliveries, each endpoint with its own bounded lane.

An endpoint's lane holds at most ``concurrency`` attempts in flight, and due work is picked
per endpoint, so a slow or dead receiver fills only its own lane and never delays the others.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifier._tasks import settle
from notifier.delivery.retry import next_attempt_delay
from notifier.delivery.senders import Sender
from notifier.log import get_logger
from notifier.models import SendResult
from notifier.store import DueDelivery, Store

log = get_logger(component="dispatcher")


@dataclass
class Lane:
    name: str
    sender: Sender
    concurrency: int
    in_flight: dict[int, asyncio.Task[None]] = field(default_factory=dict)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        lanes: Mapping[str, tuple[Sender, int]],
        retry_schedule: Sequence[float],
        *,
        clock: Callable[[], float] = time.time,
        observer: Callable[[str, DueDelivery, SendResult, float], None] | None = None,
    ) -> None:
        self.store = store
        self._clock = clock
        self._rng = random.Random()
        self._lanes: dict[str, Lane] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._kick_pending = False
        self.retry_schedule: list[float] = []
        self.observer = observer
        self.configure(lanes, retry_schedule)

    def configure(self, lanes: Mapping[str, tuple[Sender, int]], schedule: Sequence[float]) -> None:
        """(Re)build the lanes; attempts in flight finish undisturbed and are not repeated."""
        old = self._lanes
        self._retiring = {task for task in self._retiring if not task.done()}
        for name, lane in old.items():
            if name not in lanes:
                self._retiring.update(lane.in_flight.values())
        # A lane that stays shares its in-flight map, so nothing is picked twice.
        self._lanes = {
            name: Lane(name, sender, concurrency, old[name].in_flight if name in old else {})
            for name, (sender, concurrency) in lanes.items()
        }
        self.retry_schedule = list(schedule)

    @property
    def in_flight(self) -> int:
        return sum(len(lane.in_flight) for lane in self._lanes.values())

    def kick(self) -> None:
        """Look for due work soon (new events, a freed slot) instead of at the next tick."""
        if self._kick_pending:
            return
        self._kick_pending = True
        asyncio.get_running_loop().call_soon(self._kicked)

    def _kicked(self) -> None:
        self._kick_pending = False
        self._fill()

    async def tick(self) -> None:
        self._fill()

    def _fill(self) -> None:
        now = self._clock()
        for lane in self._lanes.values():
            free = lane.concurrency - len(lane.in_flight)
            if free <= 0:
                continue
            for due in self.store.due_deliveries(lane.name, now, free, frozenset(lane.in_flight)):
                task = asyncio.create_task(self._attempt(lane, due), name=f"deliver {due.id}")
                lane.in_flight[due.id] = task

    async def _attempt(self, lane: Lane, due: DueDelivery) -> None:
        attempt = due.attempts + 1
        entry_log = log.bind(
            endpoint=lane.name,
            event_id=due.event.event_id,
            job_id=due.event.job_id,
            attempt=attempt,
        )
        started = time.monotonic()
        try:
            try:
                result = await lane.sender.send(due.event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sender bug is a failed attempt, not a dead daemon
                entry_log.exception("sender crashed")
                result = SendResult(ok=False, error=f"internal error: {type(exc).__name__}")
            elapsed = time.monotonic() - started
            self._record(due, result, attempt, entry_log)
            if self.observer is not None:
                self.observer(lane.name, due, result, elapsed)
        finally:
            lane.in_flight.pop(due.id, None)
            self.kick()

    def _record(self, due: DueDelivery, result: SendResult, attempt: int, bound: Any) -> None:
        if result.ok:
            self.store.delivery_succeeded(due.id, result.status)
            bound.info("delivered", status=result.status)
            return
        delay = next_attempt_delay(attempt, result, self.retry_schedule, self._rng.random())
        error = result.error or (f"HTTP {result.status}" if result.status else "failed")
        if delay is None:
            self.store.delivery_failed(due.id, result.status, error, None)
            bound.error(
                "delivery dead",
                status=result.status,
                error=error,
                permanent=result.permanent,
                hint="fix the endpoint, then `chanjing-notifier deliveries replay --dead`",
            )
            return
        self.store.delivery_failed(due.id, result.status, error, self._clock() + delay)
        bound.warning(
            "delivery failed; will retry",
            status=result.status,
            error=error,
            retry_in=round(delay, 1),
        )

    async def drain(self, grace: float) -> None:
        """Give attempts in flight up to ``grace`` seconds, then cancel them (they stay due)."""
        tasks = [t for lane in self._lanes.values() for t in lane.in_flight.values()]
        await settle([*tasks, *self._retiring], grace)
