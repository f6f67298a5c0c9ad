"""``events list`` and ``deliveries list | show | replay``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from notifier.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    NoState,
    UsageError,
    add_kind_option,
    add_list_options,
    chosen_kind,
    emit,
    list_limit,
    load,
    open_store,
    parse_since,
    print_list,
    render,
    show_time,
)
from notifier.cli.watch import account_filter, add_account_option
from notifier.delivery.transition import route
from notifier.models import OPERATIONAL_EVENT_TYPES, DeliveryState
from notifier.service.routing import subscriptions
from notifier.store import StoreError

DELIVERY_COLUMNS = [
    "id",
    "event_id",
    "job_id",
    "endpoint",
    "state",
    "attempts",
    "last_status",
    "last_attempt_at",
    "next_attempt_at",
    "last_error",
]


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    events = sub.add_parser("events", help="terminal events recorded", parents=[common])
    esub = events.add_subparsers(dest="action", metavar="ACTION", parser_class=type(events))
    elist = esub.add_parser(
        "list", help="event id, job id, type, time; newest first", parents=[common]
    )
    add_list_options(elist)
    add_kind_option(elist, "only events of this kind's watches", None)
    add_account_option(elist, "only events of this vendor account's watches")

    deliveries = sub.add_parser(
        "deliveries", help="per-endpoint delivery attempts", parents=[common]
    )
    dsub = deliveries.add_subparsers(dest="action", metavar="ACTION", parser_class=type(deliveries))
    dlist = dsub.add_parser(
        "list", help="deliveries with attempts, state and last error", parents=[common]
    )
    add_list_options(dlist)
    dlist.add_argument("--state", choices=[s.value for s in DeliveryState], help="only this state")
    show = dsub.add_parser(
        "show", help="one event: its body, deliveries and every attempt", parents=[common]
    )
    show.add_argument("event_id", metavar="EVENT_ID", help="the event's id (its webhook-id)")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    replay = dsub.add_parser(
        "replay",
        help="send events again (all their endpoints, or --endpoint; missing deliveries are "
        "created from the current routing); the attempt history is kept",
        parents=[common],
    )
    replay.add_argument(
        "event_ids", nargs="*", metavar="EVENT_ID", help="events to send again (or --dead)"
    )
    replay.add_argument("--dead", action="store_true", help="replay every dead delivery")
    replay.add_argument("--endpoint", metavar="NAME", help="only the delivery to this endpoint")


def _rows(args: argparse.Namespace, what: str, **filters: Any) -> list[dict[str, Any]]:
    config, _path = load(args, secrets=False)
    try:
        with open_store(config) as store:
            since = None if args.since is None else parse_since(args.since, store.now())
            return store.list_filtered(
                what, job=args.job, since=since, limit=list_limit(args), **filters
            )
    except NoState as exc:
        print(f"note: {exc}", file=sys.stderr)
        return []


def cmd_events(args: argparse.Namespace) -> int:
    if args.action != "list":
        raise UsageError("events: choose list")
    rows = _rows(args, "events", kind=chosen_kind(args), account=account_filter(args))
    print_list(args, rows, ["event_id", "account", "job_id", "type", "created_at"])
    return EXIT_OK


def cmd_deliveries(args: argparse.Namespace) -> int:
    if args.action == "list":
        print_list(args, _rows(args, "deliveries", state=args.state), DELIVERY_COLUMNS)
        return EXIT_OK
    if args.action == "show":
        return _show(args)
    if args.action == "replay":
        return _replay(args)
    raise UsageError("deliveries: choose list, show or replay")


def _show(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    try:
        with open_store(config) as store:
            event = store.event_history(args.event_id)
    except NoState as exc:
        raise StoreError(str(exc)) from None
    if event is None:
        print(f"error: no event {args.event_id}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(event, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    lines = [
        f"event {event['event_id']}  {event['type']}  job {event['job_id']}  "
        f"account {event['account'] or '-'}  at {show_time(event['created_at'])}",
    ]
    if not event["deliveries"]:
        lines.append("(no deliveries: no configured endpoint took this event)")
    for d in event["deliveries"]:
        lines.append("")
        nxt = f", next attempt {show_time(d['next_attempt_at'])}" if d["next_attempt_at"] else ""
        lines.append(f"{d['endpoint']}: {d['state']} after {_attempts(d)}{nxt}")
        history = [
            {
                **a,
                "duration": "-" if a["duration"] is None else f"{a['duration']:.3f}s",
                "replay": a["generation"],
            }
            for a in d["history"]
        ]
        columns = ["started_at", "duration", "status", "outcome", "replay", "error"]
        table = render(history, columns, False)
        lines += ["  " + line for line in table.splitlines()]
    emit("\n".join(lines))
    return EXIT_OK


def _attempts(delivery: dict[str, Any]) -> str:
    """Every attempt ever made, replays included: the delivery row counts only those since
    its last replay (the retry schedule starts again there)."""
    total = max(len(delivery["history"]), delivery["attempts"])
    replays = max((a["generation"] for a in delivery["history"]), default=0)
    if replays == 0:
        return f"{total} attempt(s)"
    return (
        f"{total} attempt(s) in all, over {replays} replay(s) "
        f"({delivery['attempts']} since the last)"
    )


def _replay(args: argparse.Namespace) -> int:
    config, _path = load(args, secrets=False)
    if bool(args.event_ids) == bool(args.dead):
        raise UsageError("deliveries replay: give EVENT_ID… or --dead (not both)")
    if args.endpoint is not None and args.dead:
        raise UsageError("deliveries replay: --endpoint goes with EVENT_ID…, not --dead")
    try:
        store = open_store(config)
    except NoState as exc:
        raise StoreError(str(exc)) from None
    with store:
        if args.dead:
            print(f"replaying {store.replay_dead()} dead delivery(ies)")
            return EXIT_OK

        def routing(
            event_type: str, watch_endpoints: tuple[str, ...] | None, account: str | None
        ) -> list[str]:
            # An event whose routing found no endpoint gets its deliveries now; one
            # for an endpoint the daemon does not run yet is parked until it does. An
            # operational event keeps its recipients: routing it again could tell an
            # endpoint about itself. A job event goes where its account's events go.
            if event_type in OPERATIONAL_EVENT_TYPES:
                return []
            return route(event_type, watch_endpoints, subscriptions(config, account))

        counts = store.replay(args.event_ids, routing, endpoint=args.endpoint)
    missing = [event_id for event_id, n in counts.items() if n == 0]
    print(
        f"replaying {sum(counts.values())} delivery(ies) of {len(counts) - len(missing)} event(s)"
    )
    to = f" to {args.endpoint}" if args.endpoint else ""
    for event_id in missing:
        print(
            f"no deliveries{to} for event {event_id} (unknown event, or no configured "
            "endpoint takes it)",
            file=sys.stderr,
        )
    return EXIT_FAILURE if missing else EXIT_OK
