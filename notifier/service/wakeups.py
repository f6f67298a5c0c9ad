"""Wake-ups: run a job at once when another node or program changed the shared state.

On PostgreSQL the database notifies every daemon of new queue rows, new (or reopened) watches
and deliveries that became pending (``notifier.store.postgres_listen``). Each kind of change
runs its job now instead of at its next tick: ``queue`` the intake, ``watch`` the poller's due
check (it calls only while this node holds the vendor lease), ``delivery`` the dispatcher.

The ticks keep running whatever happens here: while the listening connection is down (a
server restart, a terminated backend) the daemon is as quick as its ticks, the outage is
logged once, and the listener connects again with a growing pause. After a reconnect every
job runs once, for what changed while nobody listened.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping

from notifier.log import get_logger
from notifier.store.postgres_listen import Change, ChangeFeed

log = get_logger(component="wakeups")

#: Pause before connecting again after the listener's connection failed, doubling up to MAX.
RECONNECT_MIN = 0.5
RECONNECT_MAX = 10.0

Action = Callable[[], Awaitable[None] | None]


class Wakeups:
    """Listens to ``feed`` and runs ``actions[kind]`` for each change of that kind.

    ``own()`` names this daemon's own store session: its changes are skipped (the daemon
    woke itself in-process already). ``observer(kind)`` counts the wake-ups (metrics).
    An action already running is not started twice: it runs once more when it ends.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        actions: Mapping[str, Action],
        *,
        own: Callable[[], int | None] = lambda: None,
        observer: Callable[[str], None] | None = None,
    ) -> None:
        self.feed = feed
        self.actions = dict(actions)
        self._own = own
        self._observer = observer
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Future[None]] = {}
        self._again: set[str] = set()
        #: Whether a listening connection is up (for tests and the status).
        self.listening = asyncio.Event()
        #: Connections made (1 once listening; more after each outage), and attempts failed.
        self.connections = 0
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="wake-up listener")

    async def close(self) -> None:
        """Stop listening and wait for the actions started by a wake-up."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        if self._task is not None:
            self._task.cancel()
        self._again.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self) -> None:
        """Listen until cancelled, connecting again after every failure."""
        pause = RECONNECT_MIN
        down_since: float | None = None
        while True:
            try:
                async with self.feed.listen() as changes:
                    self.connections += 1
                    self.listening.set()
                    if down_since is not None:
                        log.info(
                            "listening for changes again; catching up on what was missed",
                            state=self.feed.where,
                            down_seconds=round(time.monotonic() - down_since, 1),
                        )
                        down_since = None
                        for kind in self.actions:
                            self._run(kind)
                    else:
                        log.info("listening for changes by other nodes", state=self.feed.where)
                    pause = RECONNECT_MIN
                    async for change in changes:
                        self._wake(change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the listener must outlive any database trouble
                self.listening.clear()
                self.failures += 1
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning(
                        "cannot listen for changes by other nodes; the ticks carry on, "
                        "reconnecting",
                        state=self.feed.where,
                        error=f"{type(exc).__name__}: {exc}",
                    )
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX)

    def _wake(self, change: Change) -> None:
        if change.kind not in self.actions or change.pid == self._own():
            return
        if self._observer is not None:
            self._observer(change.kind)
        self._run(change.kind)

    def _run(self, kind: str) -> None:
        """Start ``kind``'s action, or have it run once more if it is running."""
        if kind in self._running:
            self._again.add(kind)
            return
        try:
            result = self.actions[kind]()
        except Exception:
            log.exception("a wake-up's job failed; its tick runs it again", kind=kind)
            return
        if not inspect.isawaitable(result):
            return
        task = asyncio.ensure_future(result)
        self._running[kind] = task
        task.add_done_callback(lambda done: self._done(kind, done))

    def _done(self, kind: str, task: asyncio.Future[None]) -> None:
        del self._running[kind]
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "a wake-up's job failed; its tick runs it again",
                kind=kind,
                exc_info=task.exception(),
            )
        if kind in self._again and self._task is not None and not self._task.done():
            self._again.discard(kind)
            with contextlib.suppress(RuntimeError):  # the loop is closing
                self._run(kind)


__all__ = ["RECONNECT_MAX", "RECONNECT_MIN", "Wakeups"]
