"""What the CI pass running the tests says about the machine (set by .ci/run)."""

from __future__ import annotations

import os

#: Set by .ci/run for its pass with busy loops on every core: staying within the vendor
#: budget must still hold, but *using* most of it needs CPU, so that part is not checked.
#: Under pytest-xdist the workers load the cores just as much (the README's command runs the
#: suite on 4 workers); CI checks the budget's use in its serial `-m realtime` pass.
CPU_LOADED = (
    os.environ.get("CHANJING_TEST_CPU_LOADED") == "1" or "PYTEST_XDIST_WORKER" in os.environ
)
#: Set by .ci/run for its coverage pass: tracing slows the daemon and the simulator several
#: fold, more than the limiter's 50 ms guard for the lag between taking a slot and the call
#: arriving, so per-second budget counts are not checked there. CI checks them in its
#: untraced `realtime` passes (every test that counts the budget is marked `realtime`).
TRACED = os.environ.get("CHANJING_TEST_TRACED") == "1"
