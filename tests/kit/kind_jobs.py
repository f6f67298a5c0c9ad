"""Jobs of every kind for the tests that take each kind along one intake path through the
real daemon: a success and a failure of each kind made on the simulator, and the check that
each arrived as its own kind's event (so a path that dropped the kind fails)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from notifier.tools.receiver import Receiver
from tests.kit.servers import ReceiverServer, Simulator

#: The outcomes each kind's jobs end in.
ENDS = ("succeeded", "failed")
#: (kind, outcome) → job id.
KindJobs = dict[tuple[str, str], str]


def job_events(rec: Receiver, path: str = "/ops") -> dict[tuple[str, str], dict[str, Any]]:
    """(job id, type) → the webhook's body, of every accepted webhook at ``path``."""
    return {(r.payload["data"]["id"], r.payload["type"]): r.payload for r in rec.accepted(path)}


def add_kind_jobs(simulator: Simulator, names: Iterable[str], **job: Any) -> KindJobs:
    """A success and a failure of each kind in ``names``, short-lived (``job``: more
    ``add_job`` arguments, e.g. a callback URL per kind given as a format with ``{kind}``)."""
    jobs: KindJobs = {}
    for kind in names:
        for outcome in ENDS:
            extra = {k: v.format(kind=kind) if isinstance(v, str) else v for k, v in job.items()}
            extra.setdefault("queue_s", 0.2)
            extra.setdefault("run_s", 1.0)
            jobs[kind, outcome] = simulator.sim.add_job(
                kind=kind, outcome=outcome, msg=f"{kind} {outcome}", **extra
            )
    return jobs


def await_kind_events(
    receiver: ReceiverServer, jobs: KindJobs, timeout: float = 60.0
) -> dict[tuple[str, str], dict[str, Any]]:
    """Wait until each job's ``<kind>.<outcome>`` webhook came; assert it came once, of its
    kind only, with ``data.kind`` naming the kind (lip-sync's payload has no ``kind``).
    The webhooks by (job id, type)."""
    rec = receiver.receiver
    want = {(job_id, f"{kind}.{outcome}") for (kind, outcome), job_id in jobs.items()}
    assert rec.wait_for_blocking(lambda r: set(job_events(r)) >= want, timeout), rec.summary()
    got = job_events(rec)
    ours = {key: body for key, body in got.items() if key[0] in set(jobs.values())}
    assert set(ours) == want, sorted(set(ours) - want)  # no other kind's event for these ids
    for (_job_id, type_), body in ours.items():
        assert body["data"].get("kind", "lip_sync") == type_.rpartition(".")[0], body
    return got
