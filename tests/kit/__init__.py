"""The test kit: what tests and benchmarks use to run the real thing (issue 20, item 5).

The daemon as a child process (:mod:`.daemon`), config and environment builders
(:mod:`.config`), the CLI and a workspace to run it in (:mod:`.cli`), the simulator and
receiver as fixtures hand them out and a log of vendor calls (:mod:`.servers`), a throwaway
PostgreSQL (:mod:`.pg`), a small real filesystem (:mod:`.fault_fs`), clocks (:mod:`.clocks`),
bounded waits (:mod:`.waits`) and loopback ports (:mod:`.net`); the fixtures the layers'
conftests hand out (:mod:`.fixtures`). Helpers that tests of one stage share live beside
them: the sweep and poller rigs, the simulator client, the intake API app, config texts, the
CLI tests' environment, lease clocks, vendor-callback config, the systemd unit, the
in-process daemon, old schema files, rows for the store. Test modules import helpers from
here only, never from another test module or a conftest (tests/unit/test_layout.py).
"""

from tests.kit.cli import Workspace, run_cli, run_cli_process
from tests.kit.clocks import LIBFAKETIME, T0, FakeClock, run_virtual, steppable_clock
from tests.kit.config import (
    ANALYTICS_SECRET,
    APP_ID,
    OLD_OPS_SECRET,
    OPS_SECRET,
    SECRET_KEY,
    SLACK_PATH,
    base_config,
    daemon_env,
    secrets_for,
)
from tests.kit.daemon import Daemon, DaemonError, DaemonProcess, NotifySocket
from tests.kit.fault_fs import SmallDisk, small_disk
from tests.kit.machine import CPU_LOADED, TRACED
from tests.kit.net import free_port
from tests.kit.pg import PgServer, PgUnavailable
from tests.kit.servers import ArrivalLog, ReceiverServer, Simulator
from tests.kit.store import StoreFactory, fail_as_before
from tests.kit.waits import until, wait_until

__all__ = [
    "ANALYTICS_SECRET",
    "APP_ID",
    "CPU_LOADED",
    "LIBFAKETIME",
    "OLD_OPS_SECRET",
    "OPS_SECRET",
    "SECRET_KEY",
    "SLACK_PATH",
    "T0",
    "TRACED",
    "ArrivalLog",
    "Daemon",
    "DaemonError",
    "DaemonProcess",
    "FakeClock",
    "NotifySocket",
    "PgServer",
    "PgUnavailable",
    "ReceiverServer",
    "Simulator",
    "SmallDisk",
    "StoreFactory",
    "Workspace",
    "base_config",
    "daemon_env",
    "fail_as_before",
    "free_port",
    "run_cli",
    "run_cli_process",
    "run_virtual",
    "secrets_for",
    "small_disk",
    "steppable_clock",
    "until",
    "wait_until",
]
