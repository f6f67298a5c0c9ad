"""The `chanjing-notifier` command line.

Exit codes: 0 ok, 2 bad usage or bad config (the message names the key), 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from notifier import __version__
from notifier.cli import deliveries, state, tools, watch
from notifier.cli.common import CONFIG_ENV, EXIT_OK, EXIT_USAGE, UsageError
from notifier.store import StoreError

__all__ = ["CONFIG_ENV", "UsageError", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chanjing-notifier",
        description=(
            "Watch Chanjing lip-sync jobs and push a signed webhook or a Slack message when "
            "each one succeeds or fails."
        ),
        epilog=f"The config file comes from -c/--config (before or after the command) or "
        f"${CONFIG_ENV}. New here: docs/try-it-locally.md (five minutes, no account needed). "
        "The config reference: docs/config.md.",
    )
    parser.add_argument(
        "-c", "--config", metavar="PATH", help=f"config file (default: ${CONFIG_ENV})"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # -c/--config is accepted after the command and the action too; SUPPRESS keeps a
    # sub-parser from overwriting one given earlier.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", metavar="PATH", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    tools.add_parsers(sub, common)
    watch.add_parsers(sub, common)
    deliveries.add_parsers(sub, common)
    state.add_parsers(sub, common)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": tools.cmd_run,
    "check": tools.cmd_check,
    "watch": watch.cmd_watch,
    "events": deliveries.cmd_events,
    "deliveries": deliveries.cmd_deliveries,
    "state": state.cmd_state,
    "simulate": tools.cmd_simulate,
    "receive": tools.cmd_receive,
    "demo": tools.cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    try:
        try:
            args = parser.parse_args(argv)
            if args.command is None:
                parser.print_help()
                return EXIT_USAGE
            if getattr(args, "action", "-") is None:
                raise UsageError(f"{args.command}: missing action (see --help)")
            code = COMMANDS[args.command](args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except UsageError as exc:
            print(
                f"error: {exc}" if not str(exc).startswith("chanjing-notifier") else str(exc),
                file=sys.stderr,
            )
            return EXIT_USAGE
        except StoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    except BrokenPipeError:
        # The reader went away (`| head`): what it wanted it has. Quiet, and no second
        # error when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
