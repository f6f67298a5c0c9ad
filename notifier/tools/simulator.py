"""A faithful local stand-in of Chanjing's open API for every job kind (lip-sync, video
synthesis, avatars, voice clones, speech, AI creation; their wire truth is in ``sim_kinds``).

Used by ``chanjing-notifier simulate``, the offline demo, the integration tests and the latency
benchmark. It speaks the vendor's wire format (HTTP 200 + ``{trace_id, code, msg, data}``
envelope, real 404 for unknown paths), enforces the per-second QPS limit on *its own* clock,
revokes the previous access token when a new one is issued, and keeps its own bookkeeping
(arrivals per second, codes returned, when each job finished and when a poller first saw it)
so tests and benchmarks can judge a client from the server's side. Every kind's create,
detail and list calls share the account's one QPS budget and token, as the vendor's do.

Several accounts (``SimConfig.accounts``, ``sim_accounts``) each have their own app id,
budget, token and jobs; a call belongs to the account whose token it presents. Faults, the
noise of other applications and the simulator-wide counters are shared.

Time is whatever ``clock()`` says: tests inject a fake clock and advance it instead of sleeping.
Only the ``slow_seconds`` fault and the callback ticker use real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from notifier.service.http_server import AppServer
from notifier.tools.sim_accounts import Accounts, AccountState, SimAccount
from notifier.tools.sim_admin import add_admin_routes
from notifier.tools.sim_jobs import (
    SimInputError,
    SimJob,
    callback_url_of,
    later_of,
    number,
    outcome_of,
    positive_int,
    progress_points_of,
)
from notifier.tools.sim_kinds import (
    AI_CREATION_TYPE,
    DEFAULT_KIND,
    SIM_KINDS,
    SUCCEEDED,
    TERMINAL,
    SimKind,
    sim_kind,
)
from notifier.tools.sim_wire import (
    CODE_INTERNAL,
    CODE_INTERNAL_2,
    CODE_OK,
    CODE_PARAM,
    CODE_QPS,
    CODE_TOKEN_INVALID,
    QpsCounter,
    bad_gateway,
    creation_type_of,
    envelope,
    flag_of,
    ids_of,
    json_response,
    read_object,
    same,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- wire constants

API_PREFIX = "/open/v1/"
TOKEN_PATH = "/open/v1/access_token"
#: Request key of the calling account (set by the gate), response key of the vendor code.
CALLER = web.RequestKey("sim_account", AccountState)
REPLY_CODE = web.ResponseKey("sim_code", int)
#: How often (real seconds) the background ticker looks for jobs whose callback is due.
CALLBACK_TICK_S = 0.05
CALLBACK_TIMEOUT_S = 10.0

FAULT_KEYS = (
    "fault_50000",
    "fault_51000",
    "fault_html",
    "slow_rate",
    "slow_seconds",
    "list_page_cap",
    "list_lag_s",
    "noise_rate",
)
#: Fault settings that are not probabilities.
NON_RATE_KEYS = frozenset({"slow_seconds", "list_page_cap", "list_lag_s", "noise_rate"})
JOB_FIELDS = (
    "kind",
    "id",
    "queue_s",
    "run_s",
    "outcome",
    "msg",
    "progress_points",
    "create_time",
    "callback",
    "reject_first_calls",
    "reject_for_s",
    "later_status",
    "later_s",
    "account",
)
#: What a create call's ``_sim`` object may say about the job it makes.
CREATE_HINTS = frozenset(
    {"queue_s", "run_s", "outcome", "msg", "progress_points", "later_status", "later_s"}
)


@dataclass
class SimConfig:
    """Simulator settings; fault rates are probabilities (0..1) per detail/list call."""

    app_id: str = "demo-app"
    secret_key: str = "demo-secret"
    #: Arrivals allowed per calendar second of the simulator clock; <= 0 means unlimited.
    qps: int = 10
    token_ttl: float = 86400
    fault_50000: float = 0.0
    fault_51000: float = 0.0
    fault_html: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 3.0
    seed: int | None = None
    default_queue_s: float = 3.0
    default_run_s: float = 10.0
    #: A busy account. Largest page_size the list call honours (0: the documented 100);
    #: larger requests get this many per page, as a capping vendor does.
    list_page_cap: int = 0
    #: List answers show the account as it was this many seconds ago (detail is current).
    list_lag_s: float = 0.0
    #: Jobs per second created by "other applications" on the account (never watched).
    noise_rate: float = 0.0
    #: Accounts served besides the first (``app_id``/``secret_key``/``qps`` above), each with
    #: its own budget, token and jobs.
    accounts: tuple[SimAccount, ...] = ()
    #: AI creation's list refuses (40000) a call without ``type`` (3 images, 4 videos), as
    #: one public source suggests it may; with one, it holds only that type's jobs.
    ai_list_needs_type: bool = False


# --------------------------------------------------------------------------- the simulator


class VendorSimulator:
    """The vendor's state (token, jobs, counters) plus an aiohttp app that serves it.

    Thread-safe: tests call ``add_job``/``stats``/``set_faults`` from their own thread while
    the app runs on a :class:`~notifier.service.http_server.ServerThread` loop.
    """

    def __init__(
        self, config: SimConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = dataclasses.replace(config) if config is not None else SimConfig()
        self.clock = clock
        self._lock = threading.RLock()
        self._rng = random.Random(self.config.seed)
        first = SimAccount(self.config.app_id, self.config.secret_key, self.config.qps)
        self._accounts = Accounts(
            [AccountState(first, lambda: self.config.qps)]
            + [AccountState(acc) for acc in self.config.accounts]
        )
        #: Every arrival, whichever account (the simulator-wide counters of ``stats()``).
        self._qps = QpsCounter()
        #: The first account's jobs by kind, then id: the same id under two kinds (or two
        #: accounts) is two jobs.
        self._kind_jobs = self._accounts.default.kind_jobs
        #: The lip-sync jobs (what tests of the lip-sync daemon reach into).
        self._jobs = self._kind_jobs[DEFAULT_KIND]
        self._seq = 0
        self._codes: dict[int, int] = {}
        self._http_errors = 0
        self._by_path: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._noise_since: float | None = None
        self._noise_made = 0

    # ----------------------------------------------------------------- Python API

    def add_job(
        self,
        job_id: str | None = None,
        *,
        queue_s: float | None = None,
        run_s: float | None = None,
        outcome: int | str | None = None,
        msg: str | None = None,
        progress_points: Sequence[Sequence[float]] | None = None,
        create_time: int | None = None,
        callback: str | None = None,
        reject_first_calls: int = 0,
        reject_for_s: float = 0.0,
        kind: str = DEFAULT_KIND,
        later_status: int | None = None,
        later_s: float = 0.0,
        account: str | None = None,
    ) -> str:
        """Create a job of ``kind`` now (simulator clock) and return its id (32 hex chars
        unless given); ``outcome`` is ``succeeded``/``failed`` or one of the kind's status
        values (default: success); ``account`` is an app id or name (default: the first)."""
        owner = self._accounts.find(account)
        try:
            spec = sim_kind(kind)
        except ValueError as exc:
            raise SimInputError(str(exc)) from None
        if job_id is None:
            job_id = secrets.token_hex(16)
        elif not isinstance(job_id, str) or not job_id:
            raise SimInputError(f"id must be a non-empty string, got {job_id!r}")
        q = self.config.default_queue_s if queue_s is None else number("queue_s", queue_s)
        r = self.config.default_run_s if run_s is None else number("run_s", run_s)
        phase, status = outcome_of(spec, outcome)
        later = later_of(spec, later_status)
        later_after = number("later_s", later_s)
        if msg is not None and not isinstance(msg, str):
            raise SimInputError(f"msg must be a string, got {type(msg).__name__}")
        points = None if progress_points is None else progress_points_of(progress_points)
        if create_time is not None and (
            isinstance(create_time, bool) or not isinstance(create_time, int)
        ):
            raise SimInputError(f"create_time must be an integer, got {create_time!r}")
        cb = None if callback is None else callback_url_of(callback)
        if cb is not None and spec.callback is None:
            raise SimInputError(f"a {spec.name} job does not call back (drop callback)")
        rejects = int(number("reject_first_calls", reject_first_calls))
        reject_s = number("reject_for_s", reject_for_s)
        with self._lock:
            jobs = owner.kind_jobs[spec.name]
            if job_id in jobs:
                raise SimInputError(f"{spec.name} job {job_id!r} already exists")
            now = self.clock()
            self._seq += 1
            jobs[job_id] = SimJob(
                id=job_id,
                created_at=now,
                queue_s=q,
                run_s=r,
                outcome=status,
                kind=spec,
                succeeds=phase == SUCCEEDED,
                later_status=later,
                later_s=later_after,
                msg=msg if msg is not None else spec.default_msg,
                progress_points=points,
                create_time=int(now) if create_time is None else create_time,
                callback=cb,
                seq=self._seq,
                reject_first_calls=rejects,
                reject_for_s=reject_s,
            )
        return job_id

    def add_job_from_mapping(self, spec: Mapping[str, Any]) -> str:
        """``add_job`` from a JSON/YAML object (admin endpoint, ``simulate`` job lists)."""
        if not isinstance(spec, Mapping):
            raise SimInputError(f"a job must be an object, got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(JOB_FIELDS))
        if unknown:
            raise SimInputError(f"unknown job field(s) {unknown}; allowed: {list(JOB_FIELDS)}")
        kwargs = {k: v for k, v in spec.items() if k != "id"}
        return self.add_job(spec.get("id"), **kwargs)

    def revoke_token(self, account: str | None = None) -> None:
        """Invalidate an account's current token (default: the first account's), as a
        reissue elsewhere would (tests token refresh)."""
        with self._lock:
            self._accounts.find(account).tokens.revoke()

    def current_token(self, account: str | None = None) -> str | None:
        """An account's one valid access token (a benchmark's direct client shares the
        daemon's, so neither revokes the other)."""
        with self._lock:
            return self._accounts.find(account).tokens._token

    def accounts(self) -> list[SimAccount]:
        """The accounts served, the default (first) one first."""
        return [state.account for state in self._accounts.states]

    def set_faults(self, **rates: float) -> None:
        """Change fault rates at runtime (``fault_50000``, ``fault_html``, ``slow_seconds``…)."""
        unknown = sorted(set(rates) - set(FAULT_KEYS))
        if unknown:
            raise SimInputError(f"unknown fault setting(s) {unknown}; allowed: {list(FAULT_KEYS)}")
        checked: dict[str, float] = {}
        for key, value in rates.items():
            checked[key] = number(key, value)
            if key not in NON_RATE_KEYS and checked[key] > 1:
                raise SimInputError(f"{key} is a probability and must be <= 1, got {value!r}")
        if "list_page_cap" in checked:
            checked["list_page_cap"] = int(checked["list_page_cap"])
        with self._lock:
            now = self.clock()
            self._make_noise(now)  # what the old rate made so far
            for key, value in checked.items():
                setattr(self.config, key, value)
            if "noise_rate" in checked:
                self._noise_since, self._noise_made = now, 0  # the new rate counts from now

    def faults(self) -> dict[str, float]:
        with self._lock:
            return {key: float(getattr(self.config, key)) for key in FAULT_KEYS}

    def reset_stats(self) -> None:
        """Zero the request counters (and per-job ``detail_calls``); job timelines stay."""
        with self._lock:
            self._qps.reset()
            self._codes.clear()
            self._http_errors = 0
            self._by_path.clear()
            for state in self._accounts.states:
                state.reset()
            for job in self._all_jobs():
                job.detail_calls = 0

    def stats(self, account: str | None = None) -> dict[str, Any]:
        """JSON-able counters, all on the simulator clock: the whole simulator's (every
        account's calls together), each account's under ``accounts``; with ``account`` (app
        id or name) the same shape for that account alone."""
        with self._lock:
            now = self.clock()
            states = self._accounts.states
            if account is None:
                top = {
                    "qps": self.config.qps,
                    "calls": self._qps.total,
                    "per_second": {str(s): n for s, n in sorted(self._qps.per_second.items())},
                    "max_per_second": self._qps.max_per_second,
                    "codes": {str(c): n for c, n in sorted(self._codes.items())},
                    "tokens_issued": sum(state.tokens.issued for state in states),
                    "by_path": dict(sorted(self._by_path.items())),
                }
            else:
                states = [self._accounts.find(account)]
                top = {k: v for k, v in states[0].stats().items() if k not in ("name", "jobs")}
            return {
                "now": now,
                **top,
                "http_errors": self._http_errors,
                "jobs": {
                    self._stats_key(state, job): self._job_stats(job, now)
                    for state in states
                    for job in state.all_jobs()
                },
                "accounts": {state.app_id: state.stats() for state in states},
            }

    def jobs(self, account: str | None = None) -> list[dict[str, Any]]:
        """Every job's (or one account's jobs') current detail plus its timeline and account,
        newest first (admin view)."""
        with self._lock:
            now = self.clock()
            states = self._accounts.states if account is None else [self._accounts.find(account)]
            return [
                {"id": job.id, **job.detail(now), **self._job_stats(job, now), "account": app_id}
                for job, app_id in self._newest_first(None, states)
            ]

    async def fire_due_callbacks(self) -> list[str]:
        """Start the callback POST of every terminal job that has one not yet sent.

        The background ticker calls this; tests may call it on the server loop to make the
        "not yet / only once" checks deterministic. Returns the ids dispatched now.
        """
        due: list[tuple[SimJob, dict[str, Any]]] = []
        with self._lock:
            now = self.clock()
            for job in self._all_jobs():
                if job.callback is None or job.callback_sent_at is not None:
                    continue
                if job.phase(now) in TERMINAL:
                    job.callback_sent_at = now
                    data = job.detail(now)
                    body = (
                        data if job.kind.callback == "bare" else envelope(CODE_OK, "success", data)
                    )
                    due.append((job, body))
        loop = asyncio.get_running_loop()
        for job, body in due:
            task = loop.create_task(self._post_callback(job, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return [job.id for job, _ in due]

    # ----------------------------------------------------------------- bookkeeping

    def _make_noise(self, now: float) -> None:
        """Create the jobs "other applications" made since the last call, each at its own
        time on the simulator clock (no background task: any request catches up)."""
        rate = self.config.noise_rate
        if rate <= 0:
            return
        if self._noise_since is None:  # the rate came with the config: count from now
            self._noise_since, self._noise_made = now, 0
            return
        due = int((now - self._noise_since) * rate)
        for n in range(self._noise_made, due):
            at = self._noise_since + (n + 1) / rate
            self._seq += 1
            job_id = f"noise-{self._seq:07d}"
            self._jobs[job_id] = SimJob(
                id=job_id,
                created_at=at,
                queue_s=self.config.default_queue_s,
                run_s=self.config.default_run_s,
                outcome=SIM_KINDS[DEFAULT_KIND].success,
                msg=SIM_KINDS[DEFAULT_KIND].default_msg,
                progress_points=None,
                create_time=int(at),
                callback=None,
                seq=self._seq,
            )
        self._noise_made = max(self._noise_made, due)

    @staticmethod
    def _job_stats(job: SimJob, now: float) -> dict[str, Any]:
        return {
            "kind": job.kind.name,
            "status_now": job.state(now)[0],
            "created_at": job.created_at,
            "completed_at": job.completed_at,
            "first_terminal_seen_at": job.first_terminal_seen_at,
            "detail_calls": job.detail_calls,
            "outcome": job.outcome,
            "callback_sent_at": job.callback_sent_at,
            "callback_result": job.callback_result,
        }

    def _stats_key(self, state: AccountState, job: SimJob) -> str:
        """A job's key in ``stats()["jobs"]``: its id for a lip-sync job of the first account
        (as always), else kind:id, prefixed by ``app_id/`` on the other accounts."""
        key = job.id if job.kind.name == DEFAULT_KIND else f"{job.kind.name}:{job.id}"
        return key if state is self._accounts.default else f"{state.app_id}/{key}"

    def _all_jobs(self) -> list[SimJob]:
        return [job for state in self._accounts.states for job in state.all_jobs()]

    def _newest_first(
        self, kind: str | None, states: Sequence[AccountState]
    ) -> list[tuple[SimJob, str]]:
        """Jobs of ``kind`` (every kind when None) of ``states`` with their app id, newest
        first, as list calls show them."""
        jobs = [
            (job, state.app_id)
            for state in states
            for job in (state.all_jobs() if kind is None else state.kind_jobs[kind].values())
        ]
        return sorted(jobs, key=lambda pair: (pair[0].created_at, pair[0].seq), reverse=True)

    def _reply(self, code: int, msg: str, data: Any = None) -> web.Response:
        with self._lock:
            self._codes[code] = self._codes.get(code, 0) + 1
        response = json_response(envelope(code, msg, data))
        response[REPLY_CODE] = code  # the gate counts it for the caller's account
        return response

    def _http_error(self) -> None:
        with self._lock:
            self._http_errors += 1

    async def _caller(self, request: web.Request) -> AccountState:
        """The account a vendor call belongs to: the one its token was issued to (valid or
        not), a token call's by the ``app_id`` it names; the first account for anything
        else (no token, one never issued), as with a single account."""
        found: AccountState | None = None
        if request.path == TOKEN_PATH:
            with contextlib.suppress(SimInputError):
                found = self._accounts.by_app_id((await read_object(request)).get("app_id"))
        else:
            with self._lock:
                found = self._accounts.owner(request.headers.get("access_token"))
        return found or self._accounts.default

    def _arrive(self, state: AccountState, path: str) -> int:
        """Count one arrival simulator-wide and for ``state``; its index in the second on
        ``state``'s own budget."""
        with self._lock:
            now = self.clock()
            self._by_path[path] = self._by_path.get(path, 0) + 1
            self._qps.arrive(now)
            return state.count(path, now)

    def _token_ok(self, request: web.Request) -> AccountState | None:
        """The caller's account if the call presents its valid token, else None."""
        state = request[CALLER]
        with self._lock:
            ok = state.tokens.valid(request.headers.get("access_token"), self.clock())
        return state if ok else None

    async def _post_callback(self, job: SimJob, body: dict[str, Any]) -> None:
        """POST the detail (its envelope or bare ``data``, by kind) once, unsigned, no
        retries; failures are only recorded."""
        url = job.callback
        job_id = job.id
        assert url is not None
        try:
            timeout = aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, json=body, allow_redirects=False) as resp,
            ):
                result = f"http {resp.status}"
        except Exception as exc:  # the vendor ignores callback failures, so do we
            result = f"error {type(exc).__name__}"
        log.debug("simulator callback for job %s: %s", job_id, result)
        with self._lock:
            job.callback_result = result

    # ----------------------------------------------------------------- fault injection

    async def _fault(self) -> web.Response | None:
        """Maybe delay, then maybe answer with an injected fault instead of the real answer.

        Four draws per call whatever the rates, so a seeded run is reproducible even when
        rates change between runs.
        """
        with self._lock:
            cfg = self.config
            slow, html, f50, f51 = (self._rng.random() for _ in range(4))
            delay = cfg.slow_seconds if slow < cfg.slow_rate else 0.0
            if html < cfg.fault_html:
                kind = "html"
            elif f50 < cfg.fault_50000:
                kind = "50000"
            elif f51 < cfg.fault_51000:
                kind = "51000"
            else:
                kind = ""
        if delay > 0:
            await asyncio.sleep(delay)
        if kind == "html":
            self._http_error()
            return bad_gateway()
        if kind == "50000":
            return self._reply(CODE_INTERNAL, "internal server error")
        if kind == "51000":
            return self._reply(CODE_INTERNAL_2, "service busy, please retry later")
        return None

    # ----------------------------------------------------------------- vendor handlers

    async def _handle_token(self, request: web.Request) -> web.Response:
        try:
            body = await read_object(request)
        except SimInputError as exc:
            return self._reply(CODE_PARAM, str(exc))
        app_id, secret = body.get("app_id"), body.get("secret_key")
        if not isinstance(app_id, str) or not app_id:
            return self._reply(CODE_PARAM, "app_id is required")
        if not isinstance(secret, str) or not secret:
            return self._reply(CODE_PARAM, "secret_key is required")
        state = self._accounts.by_app_id(app_id)
        if state is None:
            return self._reply(CODE_PARAM, "app_id not found")
        if not same(secret, state.account.secret_key):
            return self._reply(CODE_PARAM, "secret_key is incorrect")
        with self._lock:
            token, expire_in = state.tokens.issue(self.clock(), self.config.token_ttl)
            self._accounts.issued(state, token)
        return self._reply(CODE_OK, "success", {"access_token": token, "expire_in": expire_in})

    async def _handle_detail(self, kind: SimKind, request: web.Request) -> web.Response:
        faulted = await self._fault()
        if faulted is not None:
            return faulted
        state = self._token_ok(request)
        if state is None:
            return self._reply(CODE_TOKEN_INVALID, "access token invalid or expired")
        if kind.detail_method == "POST":  # TTS: the id in a JSON body
            try:
                raw_id = (await read_object(request)).get(kind.id_param)
            except SimInputError as exc:
                return self._reply(CODE_PARAM, str(exc))
            job_id = raw_id if isinstance(raw_id, str) else ""
        else:
            job_id = request.query.get(kind.id_param, "")
        if not job_id:
            return self._reply(CODE_PARAM, f"param {kind.id_param} is required")
        with self._lock:
            now = self.clock()
            self._make_noise(now)
            job = state.kind_jobs[kind.name].get(job_id)
            if job is None or job.reject_detail(now):
                data = None
            else:
                data = job.detail(now)
                job.detail_calls += 1
                if job.phase(now) in TERMINAL and job.first_terminal_seen_at is None:
                    job.first_terminal_seen_at = now
        if data is None:
            return self._reply(CODE_PARAM, "record not found")
        return self._reply(CODE_OK, "success", data)

    async def _handle_list(self, kind: SimKind, request: web.Request) -> web.Response:
        """A page of the account's jobs of ``kind``, newest first; a by-ids list (AI
        creation) holds only the jobs asked for."""
        faulted = await self._fault()
        if faulted is not None:
            return faulted
        state = self._token_ok(request)
        if state is None:
            return self._reply(CODE_TOKEN_INVALID, "access token invalid or expired")
        try:
            body = await read_object(request, allow_empty=kind.list_by == "page")
            page = positive_int("page", body.get("page"), 1)
            size = positive_int(
                "page_size", body.get("page_size"), 10, maximum=kind.list_max_page_size
            )
            wanted, success_only = None, False
            if kind.list_by == "ids":
                wanted = ids_of(body.get("unique_ids"))
                success_only = flag_of("is_success", body.get("is_success"))
                creation_type = creation_type_of(body.get("type"))
                if self.config.ai_list_needs_type:
                    if creation_type is None:
                        raise SimInputError("type is required (3 images, 4 videos)")
                    if creation_type != AI_CREATION_TYPE:
                        wanted = set()  # every simulated AI creation is an image
        except SimInputError as exc:
            return self._reply(CODE_PARAM, str(exc))
        with self._lock:
            now = self.clock()
            self._make_noise(now)
            cap = self.config.list_page_cap
            size = min(size, cap) if cap > 0 else size
            # A lagging list shows the account as it was list_lag_s ago.
            then = now - self.config.list_lag_s
            jobs = [
                j
                for j, _ in self._newest_first(kind.name, [state])
                if j.created_at <= then
                and not j.unknown(now)
                and (wanted is None or j.id in wanted)
                and (not success_only or j.phase(then) == SUCCEEDED)
            ]
            chunk = [job.detail(then) for job in jobs[(page - 1) * size : page * size]]
        total = len(jobs)
        page_info = {
            "page": page,
            "size": size,
            "total_count": total,
            "total_page": math.ceil(total / size),
        }
        data = {kind.list_items: chunk, kind.list_page_info: page_info}
        return self._reply(CODE_OK, "success", data)

    async def _handle_create(self, kind: SimKind, request: web.Request) -> web.Response:
        state = self._token_ok(request)
        if state is None:
            return self._reply(CODE_TOKEN_INVALID, "access token invalid or expired")
        try:
            body = await read_object(request)
            hints = body.get("_sim") or {}
            if not isinstance(hints, dict):
                raise SimInputError("_sim must be an object")
            unknown = sorted(set(hints) - CREATE_HINTS)
            if unknown:
                raise SimInputError(f"unknown _sim hint(s) {unknown}")
            # A kind whose create takes no callback ignores the field, as the vendor would.
            callback = body.get("callback") if kind.callback is not None else None
            job_id = self.add_job(
                kind=kind.name,
                callback=callback if callback else None,
                queue_s=hints.get("queue_s"),
                run_s=hints.get("run_s"),
                outcome=hints.get("outcome"),
                msg=hints.get("msg"),
                progress_points=hints.get("progress_points"),
                later_status=hints.get("later_status"),
                later_s=hints.get("later_s", 0.0),
                account=state.app_id,
            )
        except SimInputError as exc:
            return self._reply(CODE_PARAM, str(exc))
        data = job_id if kind.create_id is None else {kind.create_id: job_id}
        return self._reply(CODE_OK, "success", data)

    # ----------------------------------------------------------------- the app

    def _route_kind(self, app: web.Application, kind: SimKind) -> None:
        """The create, detail and (if any) list routes of one kind."""

        def bound(
            handler: Callable[[SimKind, web.Request], Awaitable[web.Response]],
        ) -> Callable[[web.Request], Awaitable[web.Response]]:
            async def handle(request: web.Request) -> web.Response:
                return await handler(kind, request)

            return handle

        app.router.add_post(kind.create_path, bound(self._handle_create))
        app.router.add_route(kind.detail_method, kind.detail_path, bound(self._handle_detail))
        if kind.list_path is not None:
            app.router.add_post(kind.list_path, bound(self._handle_list))

    def make_app(self) -> web.Application:
        """A fresh aiohttp app over this simulator's state (one per server is fine)."""

        @web.middleware
        async def vendor_gate(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            # Every /open/v1/ arrival counts toward the second's QPS, even ones answered 40001.
            if not request.path.startswith(API_PREFIX):
                return await handler(request)
            # The account's own budget: one account over it leaves the others untouched.
            state = request[CALLER] = await self._caller(request)
            index = self._arrive(state, request.path)
            routed = request.match_info.http_exception is None
            response: web.StreamResponse
            try:
                if routed and state.over_budget(index):
                    response = self._reply(CODE_QPS, "request too frequent, please retry later")
                else:
                    response = await handler(request)
            except web.HTTPException as exc:
                if exc.status >= 400:
                    self._http_error()
                raise
            code = response.get(REPLY_CODE)
            if isinstance(code, int):
                with self._lock:
                    state.codes[code] = state.codes.get(code, 0) + 1
            return response

        async def callback_ticker(app: web.Application) -> AsyncIterator[None]:
            async def tick() -> None:
                while True:
                    try:
                        await self.fire_due_callbacks()
                    except Exception:  # keep ticking; a bad job must not stop callbacks
                        log.exception("simulator callback ticker failed")
                    await asyncio.sleep(CALLBACK_TICK_S)

            ticker = asyncio.get_running_loop().create_task(tick())
            yield
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            loop = asyncio.get_running_loop()
            pending = [t for t in self._tasks if t.get_loop() is loop]
            if pending:
                await asyncio.wait(pending, timeout=2)
                for task in pending:
                    task.cancel()

        app = web.Application(middlewares=[vendor_gate])
        app.cleanup_ctx.append(callback_ticker)
        app.router.add_post(TOKEN_PATH, self._handle_token)
        for kind in SIM_KINDS.values():
            self._route_kind(app, kind)
        add_admin_routes(app, self)
        return app


# --------------------------------------------------------------------------- CLI entry point


def run_simulator(
    host: str, port: int, config: SimConfig, jobs: list[dict[str, Any]] | None = None
) -> None:
    """Serve the simulator until SIGINT/SIGTERM (``chanjing-notifier simulate``)."""
    sim = VendorSimulator(config)
    for spec in jobs or []:
        job_id = sim.add_job_from_mapping(spec)
        print(f"job {job_id}", flush=True)

    async def main() -> None:
        server = AppServer(sim.make_app(), host, port)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
        served = "; ".join(f"app_id={a.app_id}, qps={a.qps}" for a in sim.accounts())
        print(f"simulator listening on http://{host}:{server.port} ({served})", flush=True)
        try:
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await server.stop()

    asyncio.run(main())
