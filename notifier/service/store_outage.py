"""What the daemon does while its state cannot be written (disk full, read-only, locked)."""

from __future__ import annotations

import math
import time

from notifier import log as logs
from notifier.store import BUSY_CAUSE, Store

log = logs.get_logger(component="daemon")

#: While the state cannot be written: probe it this often, and say so this rarely.
STORE_PROBE_EVERY = 1.0
STORE_REPORT_EVERY = 60.0
#: Another writer's lock is routine for a moment; it is reported once it lasted this long.
STORE_LOCK_PATIENCE = 5.0
#: A probe that took T seconds (a statement cut short only at its bound: a COMMIT waiting
#: for a synchronous standby) is not repeated for this many times T, so the probes leave
#: the daemon's loop free most of the time instead of holding it back to back.
PROBE_SPACING = 3.0


class StoreOutage:
    """Whether the state can be written, and what the operator is told while it cannot.

    While writes fail (disk full, read-only, another writer's lock), polling and delivery
    pause: their results could not be recorded, so every call and POST would be repeated
    later. The store is probed once a second; the error is logged once, then at most once a
    minute, naming the file and the cause; the first successful probe resumes everything.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cause: str | None = None
        self._since = 0.0
        self._probed_at = -math.inf
        self._reported_at: float | None = None
        self._health: tuple[float, bool] = (-math.inf, True)
        self._probe_every = STORE_PROBE_EVERY

    def check(self) -> bool:
        """True when the state can be written (as far as is known, probing at most once a
        second while it could not)."""
        failure = self.store.write_failure
        if failure is None:
            self._resumed()
            return True
        now = time.monotonic()
        if self.cause is None:
            self._since = failure[0]
        self.cause = failure[1]
        if now - self._probed_at >= self._probe_every:
            writable = self.store.writable()
            self._probed_at = time.monotonic()
            self._probe_every = max(STORE_PROBE_EVERY, PROBE_SPACING * (self._probed_at - now))
            if writable:
                self._resumed()
                return True
            self.cause = self.store.write_failure[1] if self.store.write_failure else self.cause
        self._report(now)
        return False

    def _report(self, now: float) -> None:
        lasted = now - self._since
        if self.cause == BUSY_CAUSE and lasted < STORE_LOCK_PATIENCE:
            return  # a moment behind another writer is routine
        if self._reported_at is not None and now - self._reported_at < STORE_REPORT_EVERY:
            return
        self._reported_at = now
        log.error(
            "state database cannot be written; polling and delivery are paused until it can",
            file=str(self.store.where),
            cause=self.cause,
            for_seconds=round(lasted, 1),
            hint="free disk space, fix permissions or stop the other writer; "
            "the daemon resumes by itself",
        )

    def _resumed(self) -> None:
        if self.cause is None:
            return
        lasted = time.monotonic() - self._since
        if self._reported_at is not None:
            log.warning(
                "state database writable again; polling and delivery resumed",
                file=str(self.store.where),
                paused_seconds=round(lasted, 1),
            )
        self.cause = None
        self._reported_at = None
        self._probed_at = -math.inf
        self._probe_every = STORE_PROBE_EVERY

    def writable_lately(self) -> bool:
        """The state's write probe for a health check, run at most once a STORE_PROBE_EVERY:
        ``/healthz`` can be asked thousands of times a second by anyone who reaches it, and
        each probe is a write transaction. While the state is known not to be writable,
        :meth:`check` is the one that probes."""
        if self.cause is not None:
            return False
        probed_at, result = self._health
        now = time.monotonic()
        if now - probed_at >= STORE_PROBE_EVERY:
            result = self.store.writable()
            self._health = (now, result)
        return result


__all__ = ["StoreOutage"]
