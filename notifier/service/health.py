"""What the daemon says about itself: ``/healthz`` (ok or why not) and the status line
(systemd's STATUS=, ``status`` in logs). Both only read the parts they report on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from notifier.delivery.operational import OperationalEvents
from notifier.polling.lease import LeaseKeeper
from notifier.polling.vendor import VendorClient
from notifier.service.clock import SkewGuard
from notifier.service.store_outage import StoreOutage
from notifier.store import DB_ERRORS, Store

#: /healthz fails when the poll tick (every 0.2 s) has not run for this long.
HEALTH_STALE_AFTER = 5.0


class Health:
    """The answers of ``/healthz`` and the status line, from the running parts."""

    def __init__(
        self,
        store: Store,
        store_outage: StoreOutage,
        lanes: Callable[[], Mapping[str, tuple[LeaseKeeper, VendorClient]]],
        skew: SkewGuard | None,
        ops: OperationalEvents,
    ) -> None:
        """``lanes``: each account's lease keeper and current vendor client, by account."""
        self.store = store
        self.store_outage = store_outage
        self._lanes = lanes
        self.skew = skew
        self.ops = ops
        #: When the poll tick last ran (monotonic): the scheduler is alive.
        self.last_tick = time.monotonic()

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def health(self) -> tuple[bool, str]:
        if self.store_outage.cause is None and not self.store_outage.writable_lately():
            self.store_outage.check()
        cause = self.store_outage.cause
        if cause is not None:
            return False, f"state database {self.store.where} cannot be written: {cause}"
        if self.skew is not None and self.skew.off is not None:
            return False, f"{self.skew.off}: not sending or calling the vendor; fix its time"
        stale = time.monotonic() - self.last_tick
        if stale > HEALTH_STALE_AFTER:
            return False, f"scheduler stalled: no tick for {stale:.1f}s"
        lanes = self._lanes()
        for account, (_lease, client) in lanes.items():
            problem = client.credentials_problem
            if problem is None:
                continue
            # Degraded, not dead: nothing can be polled as that account until the operator
            # fixes the config.
            if len(lanes) == 1:
                return False, f"{problem}; check chanjing.app_id / chanjing.secret_key"
            return False, f"account {account}: {problem}; check its app_id / secret_key"
        for account, vendor in self.ops.state.failing_vendors().items():
            # Past alerts.vendor_failing_for (the vendor.failing event went out): nothing
            # is polled as that account, so no terminal status and no callback comes for its
            # jobs until it answers again.
            since = "" if vendor.since is None else f" since {_iso(vendor.since)}"
            whose = "vendor" if len(lanes) == 1 else f"account {account}: vendor"
            return False, (
                f"{whose} failing{since} ({vendor.failures} failed calls; "
                f"alerts.vendor_failing_for {self.ops.state.thresholds.vendor_failing_for:g}s): "
                f"{vendor.last_error}"
            )
        # A standby is healthy: it delivers, and takes over when the holder goes.
        return True, f"ok; {self.leases()}"

    def status_text(self) -> str:
        try:
            active, pending = self.store.live_counts()
        except DB_ERRORS as exc:
            # The state went away between two looks (sent at ready and after a reload too):
            # say so; the outage itself is handled by the jobs, which pause and resume.
            self.store_outage.check()
            return f"cannot read the state {self.store.where}: {exc}; {self.leases()}"
        text = f"watching {active} job(s), {pending} delivery(ies) pending; {self.leases()}"
        with contextlib.suppress(*DB_ERRORS):
            waiting = self.store.unconfigured_accounts(self._lanes())
            if waiting:
                named = ", ".join(f"{a} ({n})" for a, n in sorted(waiting.items()))
                text += f"; waiting for accounts not configured: {named}"
        cause = self.store_outage.cause
        if cause is not None:
            return f"PAUSED: cannot write {self.store.where}: {cause}; {text}"
        if self.skew is not None and self.skew.off is not None:
            return f"PAUSED: {self.skew.off}; {text}"
        return text

    def leases(self) -> str:
        """Each account's lease in a few words; one account as before accounts."""
        lanes = self._lanes()
        if len(lanes) == 1:
            ((lease, _vendor),) = lanes.values()
            return lease.describe()
        return "; ".join(f"{account}: {lease.describe()}" for account, (lease, _v) in lanes.items())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
