"""The simulator's admin endpoints under ``/_sim/`` (add and list jobs, stats, faults, token
revocation, counter reset): how a test, a benchmark or the demo scripts the vendor from
outside. ``account`` (app id or name) in the query narrows jobs, stats and revocation to one
account; bad input is a 400 whose ``error`` names the problem."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from notifier.tools.sim_jobs import SimInputError

if TYPE_CHECKING:
    from notifier.tools.simulator import VendorSimulator

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _answering(make: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    """A handler answering ``make``'s JSON, or 400 with the reason the input is refused."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return web.json_response(await make(request))
        except (SimInputError, ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    return handle


def add_admin_routes(app: web.Application, sim: VendorSimulator) -> None:
    """Route ``/_sim/*`` on ``app`` to ``sim``."""

    async def add_jobs(request: web.Request) -> dict[str, Any]:
        body = await request.json()
        specs = body if isinstance(body, list) else [body]
        return {"ids": [sim.add_job_from_mapping(spec) for spec in specs]}

    async def list_jobs(request: web.Request) -> dict[str, Any]:
        return {"jobs": sim.jobs(request.query.get("account"))}

    async def stats(request: web.Request) -> dict[str, Any]:
        return sim.stats(request.query.get("account"))

    async def faults(request: web.Request) -> dict[str, Any]:
        body = await request.json()
        if not isinstance(body, dict):
            raise SimInputError("faults must be a JSON object of rates")
        sim.set_faults(**body)
        return sim.faults()

    async def revoke(request: web.Request) -> dict[str, Any]:
        sim.revoke_token(request.query.get("account"))
        return {"revoked": True}

    async def reset_stats(request: web.Request) -> dict[str, Any]:
        sim.reset_stats()
        return {"reset": True}

    app.router.add_post("/_sim/jobs", _answering(add_jobs))
    app.router.add_get("/_sim/jobs", _answering(list_jobs))
    app.router.add_get("/_sim/stats", _answering(stats))
    app.router.add_post("/_sim/faults", _answering(faults))
    app.router.add_post("/_sim/revoke_token", _answering(revoke))
    app.router.add_post("/_sim/reset_stats", _answering(reset_stats))
