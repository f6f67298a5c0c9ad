"""What the gateway does with one application call: issue a token, absorb, forward or relay.

The application believes it talks to the vendor, so every answer it can act on comes in the
vendor's envelope (HTTP 200 + ``code``): 10400 for a token we do not accept (its SDK then
fetches a new one from us), 40001 when the budget had no turn for it within
``gateway.max_wait`` (it retries, as it would against the vendor). The vendor's own token
never leaves this module's vendor client.

Every call after the token is made as one vendor account: the one whose credentials (its
own, or a ``gateway.clients`` entry's) got the token. That account's lane is its door: its
limiter, its client and token, its lease, its watches. Nothing of another account is used.

* **Absorbed**: a detail call for a job the account watches, answered from our last
  observation of it when that is fresh (``polling.min_interval``) or final. No vendor call.
* **Forwarded**: anything else under ``/open/v1/``, with the account's token, through its
  limiter (ahead of its own polls within ``gateway.share``), the answer handed back as it
  came. A detail answer for a watched job counts as its poll (every kind's); a create of
  any kind becomes a watch of that kind and account.
* **Relayed**: on a node without the account's lease the call goes to the gateway of the
  node that holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qs

import httpx

from notifier import kinds
from notifier import log as logs
from notifier.gateway.tokens import Credentials, GatewayTokens, Holder
from notifier.intake.adding import endpoints_problem
from notifier.kinds import Kind
from notifier.models import job_id_problem, labels_problem
from notifier.polling.lease import LeaseLost
from notifier.polling.poller import Poller
from notifier.polling.ratelimit import LimiterClosed, Priority, Share
from notifier.polling.vendor import (
    CODE_BAD_PARAMETER,
    CODE_OK,
    CODE_QPS,
    CODE_TOKEN_INVALID,
    TOKEN_PATH,
    VendorClient,
    VendorError,
    WaitedTooLong,
    envelope,
    parse_detail,
    parse_envelope,
)
from notifier.store import DB_ERRORS, Store
from notifier.watchspec import watch_specs

log = logs.get_logger(component="gateway")

CREATE_PATH = kinds.LIP_SYNC.create_path or ""
#: Creates the gateway watches: every kind's create call.
CREATES = {k.create_path: k for k in kinds.KINDS.values() if k.create_path}
#: Paths we forward: the vendor's are lower-case words under /open/v1/. Nothing that could
#: climb out of it (no dots, no percent-escapes, no empty segments).
PATH_RE = re.compile(r"/open/v1/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
#: Request headers that carry a watch's labels and endpoints (``k=v`` / names, repeated or
#: comma-separated); never forwarded.
LABEL_HEADER = "x-notifier-label"
ENDPOINT_HEADER = "x-notifier-endpoint"
#: Marks a call one node relays to another: it is not relayed again.
RELAYED_HEADER = "x-notifier-relayed"
#: A standby waiting for a lease holder (a failover) looks again this often.
HOLDER_RETRY = 0.2
#: A detail call whose watched job was seen too long ago waits this long at most for a sweep
#: that may see it, before it is forwarded.
REFRESH_WAIT = 2.0
#: Paths named in metrics as they are; any other is "other" (no label per made-up path).
KNOWN_PATHS = frozenset(
    {TOKEN_PATH, "/open/v1/common/create_upload_url", "/open/v1/common/file_detail"}
    | {k.poll.path for k in kinds.KINDS.values()}
    | {k.listing.path for k in kinds.KINDS.values() if k.listing is not None}
    | set(CREATES)
)


#: Detail calls the gateway absorbs: every kind's poll.
POLLS: dict[tuple[str, str], Kind] = {(k.poll.method, k.poll.path): k for k in kinds.KINDS.values()}
#: What a create becomes: its kind, and the watch's labels and endpoints.
WatchTo = tuple[Kind, dict[str, str], list[str] | None]
#: The ``source`` of watches creates through the gateway make (``watch list`` shows it).
SOURCE = "gateway"


class HolderAddress(Protocol):
    """Where the account's lease holder's gateway is (:class:`LeaseKeeper`)."""

    @property
    def holder_advertise(self) -> str | None: ...


class AccountLane(Protocol):
    """What the gateway uses of one account's lane (``notifier.service.lane.Lane``): its
    client (token, limiter, lease gate), its lease holder's address and its poller."""

    @property
    def vendor(self) -> VendorClient: ...

    @property
    def lease(self) -> HolderAddress: ...

    @property
    def poller(self) -> Poller: ...


@dataclass
class Reply:
    """An answer for the application, and how it came about (for the log and metrics)."""

    status: int
    body: bytes
    content_type: str
    #: token, refused, absorbed, forwarded, relayed, limited, failed, rejected
    outcome: str
    code: int | None = None
    client: str | None = None
    #: The vendor account the call was made as (None: before a token said which).
    account: str | None = None
    #: Seconds the call waited for its turn at the limiter (forwarded calls).
    waited: float | None = None


def vendor_reply(code: int, msg: str, data: Any = None, *, outcome: str) -> Reply:
    body = json.dumps(envelope(code, msg, data), ensure_ascii=True).encode()
    return Reply(200, body, "application/json", outcome, code)


def error_reply(status: int, message: str, *, outcome: str = "rejected") -> Reply:
    """Not the vendor's envelope: a request no vendor call could serve (wrong path, size)."""
    return Reply(status, json.dumps({"error": message}).encode(), "application/json", outcome)


@dataclass(frozen=True)
class Call:
    """An application's request as the server read it."""

    method: str
    path: str
    query: str
    body: bytes
    content_type: str | None
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None


def _header_items(values: Sequence[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class GatewaySettings:
    """``gateway``, with what it needs of the rest of the config."""

    #: (client name, account, app_id, secret_key): each account's own credentials first
    #: (client ``account``), then ``gateway.clients``.
    credentials: tuple[tuple[str, str, str, str], ...] = field(repr=False)
    share: float
    max_wait: float
    #: ``polling.min_interval``: an observation this fresh answers a detail call.
    min_interval: float
    labels: Mapping[str, str]
    endpoints: tuple[str, ...] | None
    endpoint_names: tuple[str, ...]
    #: ``intake``'s callback URL, put into creates (None: no callback).
    callback_url: str | None
    advertise: str | None
    #: The account of a token from before accounts (None: such tokens are refused).
    default_account: str | None = None


class Gateway:
    """The gateway's behaviour, apart from HTTP (``notifier.gateway.server`` serves it)."""

    def __init__(
        self,
        store: Store,
        lanes: Mapping[str, AccountLane],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``lanes``: each account's lane by name, read at each call (a reload adds and
        removes accounts). A lane's poller records a forwarded detail answer as the watch's
        poll, and sweeps (one list call sees a page of watched jobs) for detail calls that
        find a watched job's observation too old."""
        self.store = store
        self.lanes = lanes
        self._clock = clock
        self._tokens: GatewayTokens | None = None
        self._credentials = Credentials([])
        self._default_account: str | None = None
        self._share = 0.5
        #: Each account's place ahead of its polls (``gateway.share`` of its limiter).
        self._shares: dict[str, Share] = {}
        # No proxy from the environment: the holder is another node on the operator's network.
        self._relay = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False)
        #: (account, kind, id) a create returned while the state could not be written:
        #: watched once it can.
        self.pending: dict[tuple[str, str, str], tuple[dict[str, str], list[str] | None]] = {}
        self.max_wait = 10.0
        self.min_interval = 5.0
        self.labels: dict[str, str] = {}
        self.endpoints: list[str] | None = None
        self.endpoint_names: list[str] = []
        self.callback_url: str | None = None
        self.advertise: str | None = None

    def configure(self, settings: GatewaySettings) -> None:
        """Take the gateway's settings (at start and on every reload)."""
        self._credentials = Credentials(list(settings.credentials))
        self._default_account = settings.default_account
        self._share = settings.share
        for share in self._shares.values():
            share.share = settings.share
        self.max_wait = settings.max_wait
        self.min_interval = settings.min_interval
        self.labels = dict(settings.labels)
        self.endpoints = list(settings.endpoints) if settings.endpoints is not None else None
        self.endpoint_names = list(settings.endpoint_names)
        self.callback_url = settings.callback_url
        self.advertise = settings.advertise

    def _share_of(self, account: str, lane: AccountLane) -> Share:
        """The account's bucket, made anew when its limiter is another (a new lane)."""
        limiter = lane.vendor.limiter
        share = self._shares.get(account)
        if share is None or share.limiter is not limiter:
            share = self._shares[account] = Share(limiter, self._share)
        return share

    def _token_keeper(self) -> GatewayTokens:
        if self._tokens is None:
            self._tokens = GatewayTokens(self.store.gateway_key(), clock=self._clock)
        return self._tokens

    async def aclose(self) -> None:
        await self._relay.aclose()

    # -- the request ----------------------------------------------------------------------

    async def handle(self, call: Call) -> Reply:
        if not PATH_RE.fullmatch(call.path):
            return error_reply(404, "not found: the gateway serves the vendor's /open/v1/ API")
        if call.path == TOKEN_PATH:
            if call.method != "POST":
                return error_reply(405, "method not allowed: POST /open/v1/access_token")
            return self._issue(call)
        if call.method not in ("GET", "POST"):
            return error_reply(405, "method not allowed: the vendor's API takes GET and POST")
        holder = self._holder(call)
        lane = None if holder is None else self.lanes.get(holder.account)
        if holder is None or lane is None:  # no lane: its account was removed just now
            return vendor_reply(
                CODE_TOKEN_INVALID, "access token invalid or expired", outcome="refused"
            )
        reply = await self._serve(call, holder.account, time.monotonic() + self.max_wait)
        reply.client, reply.account = holder
        return reply

    def _issue(self, call: Call) -> Reply:
        try:
            body = json.loads(call.body)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            return vendor_reply(CODE_BAD_PARAMETER, "body must be a JSON object", outcome="refused")
        app_id, secret = body.get("app_id"), body.get("secret_key")
        if not isinstance(app_id, str) or not isinstance(secret, str) or not app_id or not secret:
            return vendor_reply(
                CODE_BAD_PARAMETER, "app_id and secret_key are required", outcome="refused"
            )
        holder = self._credentials.match(app_id, secret)
        if holder is None:
            # The same answer whichever part was wrong.
            return vendor_reply(
                CODE_BAD_PARAMETER, "app_id or secret_key is incorrect", outcome="refused"
            )
        # Not handed to the redactor: no log line carries a header, and the redactor would
        # grow by one string per token call for the life of the process.
        token, expires = self._token_keeper().issue(holder)
        reply = vendor_reply(
            CODE_OK, "success", {"access_token": token, "expire_in": expires}, outcome="token"
        )
        reply.client, reply.account = holder
        return reply

    def _holder(self, call: Call) -> Holder | None:
        token = call.header("access_token")
        if not token:
            return None
        return self._token_keeper().holder_of(
            token.strip(), self._credentials.holders, self._default_account
        )

    async def _serve(self, call: Call, account: str, deadline: float) -> Reply:
        """The call as ``account``: absorbed from its watches, else forwarded through its
        lane, or relayed to the node holding its lease."""
        target = self._detail_target(call)
        if target is not None:
            kind, job_id = target
            absorbed, watched = self._absorbed(account, job_id, kind)
            lane = self.lanes.get(account)
            if absorbed is None and watched and lane is not None:
                # Too old to answer with: a sweep may see it (and the application's next
                # calls for other watched jobs) for one list call, where this is one each.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(REFRESH_WAIT, deadline - time.monotonic())):
                        await lane.poller.sweep_soon()
                absorbed, watched = self._absorbed(account, job_id, kind)
            if absorbed is not None:
                return absorbed
        watch_to: WatchTo | None = None
        created = CREATES.get(call.path) if call.method == "POST" else None
        if created is not None:
            try:
                watch_to = (created, *self._watch_settings(call))
            except ValueError as exc:
                return error_reply(400, str(exc))
        while True:
            lane = self.lanes.get(account)
            if lane is None:  # removed by a reload while the call waited
                return vendor_reply(
                    CODE_TOKEN_INVALID, "access token invalid or expired", outcome="refused"
                )
            if not lane.vendor.may_call():
                if call.header(RELAYED_HEADER) is None:
                    holder = lane.lease.holder_advertise
                    if holder is not None and holder != self.advertise:
                        return await self._relayed(holder, call, account, deadline)
                if time.monotonic() >= deadline:
                    return self._limited(account, "no node holds the account's vendor lease")
                await asyncio.sleep(HOLDER_RETRY)  # a failover: wait for a holder
                continue
            try:
                return await self._forwarded(account, lane, call, deadline, target, watch_to)
            except LeaseLost:
                continue  # lost just now: relay, or wait for the next holder

    # -- absorbed -------------------------------------------------------------------------

    @staticmethod
    def _detail_target(call: Call) -> tuple[Kind, str] | None:
        """The kind and job id of a detail call (a GET with the id in the query, or TTS's
        POST with it in a JSON body); None for any other call."""
        kind = POLLS.get((call.method, call.path))
        if kind is None:
            return None
        if kind.poll.method == "GET":
            ids = parse_qs(call.query).get(kind.poll.id_param, [])
            found: object = ids[0] if len(ids) == 1 else None
        else:
            try:
                body = json.loads(call.body)
            except (ValueError, RecursionError):
                return None
            found = body.get(kind.poll.id_param) if isinstance(body, dict) else None
        if not isinstance(found, str) or job_id_problem(found) is not None:
            return None
        return kind, found

    def _absorbed(self, account: str, job_id: str, kind: Kind) -> tuple[Reply | None, bool]:
        """Our last observation of a job ``account`` watches, when it is what the vendor
        would say; and whether the job is an active watch (that a sweep would look at).
        Another account's watch of the same id is not looked at: the vendor would answer
        this account's token for this account's job only."""
        try:
            seen = self.store.last_observation(job_id, kind=kind.name, account=account)
        except DB_ERRORS:
            return None, False  # the vendor can still answer
        if seen is None:
            return None, False
        active = seen.state == "active"
        if seen.data is None or seen.observed_at is None:
            return None, active
        final = seen.state in ("succeeded", "failed")
        if not final and self._clock() - seen.observed_at > self.min_interval:
            return None, active
        return vendor_reply(CODE_OK, "success", seen.data, outcome="absorbed"), active

    # -- forwarded ------------------------------------------------------------------------

    async def _forwarded(
        self,
        account: str,
        lane: AccountLane,
        call: Call,
        deadline: float,
        target: tuple[Kind, str] | None,
        watch_to: WatchTo | None,
    ) -> Reply:
        vendor = lane.vendor
        share = self._share_of(account, lane)
        priority = Priority.INTERACTIVE if share.take() else Priority.ORDINARY
        body = (
            self._with_callback(call, watch_to[0], account) if watch_to is not None else call.body
        )
        started = time.monotonic()
        try:
            answer = await vendor.forward(
                call.method,
                call.path,
                query=call.query,
                content=body,
                content_type=call.content_type,
                priority=priority,
                wait=max(0.0, deadline - started),
            )
        except WaitedTooLong:
            return self._limited(account, "no turn at the account's vendor budget in time")
        except LimiterClosed:
            return error_reply(503, "the daemon is stopping; try again", outcome="failed")
        except VendorError as exc:
            reply = vendor_reply(
                50000, f"gateway: the vendor did not answer ({exc})", outcome="failed"
            )
            reply.status = 502
            return reply
        response = answer.response
        reply = Reply(
            response.status_code,
            response.content,
            response.headers.get("content-type", "application/json"),
            "forwarded",
            answer.code,
            waited=vendor.last_wait(),
        )
        if answer.code == CODE_OK:
            if watch_to is not None:
                self._watch_created(account, answer.data, *watch_to)
            elif target is not None:
                self._observed(account, lane, *target, answer.data)
        return reply

    def _limited(self, account: str, why: str) -> Reply:
        log.warning(
            "gateway call answered 40001", account=account, reason=why, max_wait=self.max_wait
        )
        return vendor_reply(CODE_QPS, "request too frequent, please retry later", outcome="limited")

    def _with_callback(self, call: Call, kind: Kind, account: str) -> bytes:
        """A create without ``callback`` gets ours (the fast path) when one is configured and
        the kind takes one, its route naming the kind (the vendor's callback body does not)
        and, for another account than the default one, the account first; one the
        application gave is kept as it is."""
        if self.callback_url is None or not kind.callback:
            return call.body
        try:
            body = json.loads(call.body)
        except (ValueError, RecursionError):
            return call.body  # the vendor answers it
        if not isinstance(body, dict) or body.get("callback"):
            return call.body
        suffix = "" if kind.name == kinds.DEFAULT_KIND else f"/{kind.name}"
        if account != self._default_account:
            suffix = f"/{account}/{kind.name}"
        body["callback"] = self.callback_url + suffix
        return json.dumps(body, ensure_ascii=True).encode()

    def _observed(
        self, account: str, lane: AccountLane, kind: Kind, job_id: str, data: object
    ) -> None:
        """A detail answer forwarded for an active watch of ``account`` is that watch's
        poll, recorded by the account's poller."""
        try:
            detail = parse_detail(job_id, data, kind, account)
        except ValueError:
            return  # the application gets it as it came; our poll will judge it
        try:
            seen = self.store.last_observation(job_id, kind=kind.name, account=account)
            if seen is None or seen.state != "active":
                return
            watch = self.store.get_watch(job_id, kind=kind.name, account=account)
            if watch is not None:
                lane.poller.observe(watch, detail)
        except DB_ERRORS:
            return  # only an observation: the next poll makes it again
        except Exception:
            log.exception(
                "could not record a forwarded detail answer", job_id=job_id, account=account
            )

    # -- create → watch -------------------------------------------------------------------

    def _watch_settings(self, call: Call) -> tuple[dict[str, str], list[str] | None]:
        """Labels and endpoints from the request's headers (else ``gateway.labels`` /
        ``gateway.endpoints``); ValueError names a bad one before anything is created."""
        labels = dict(self.labels)
        for item in _header_items(call.headers.get(LABEL_HEADER, ())):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{LABEL_HEADER}: {item!r} is not key=value")
            labels[key.strip()] = value.strip()
        problem = labels_problem(labels)
        if problem:
            raise ValueError(f"{LABEL_HEADER}: {problem}")
        named = _header_items(call.headers.get(ENDPOINT_HEADER, ()))
        endpoints = named or self.endpoints
        if endpoints is not None:
            problem = endpoints_problem(endpoints, self.endpoint_names)
            if problem:
                raise ValueError(f"{ENDPOINT_HEADER}: {problem}")
        return labels, endpoints

    def _watch_created(
        self,
        account: str,
        data: object,
        kind: Kind,
        labels: dict[str, str],
        endpoints: list[str] | None,
    ) -> None:
        job_id = data if isinstance(data, str) else None
        if isinstance(data, Mapping):  # TTS answers {"task_id": …}, some kinds {"id": …}
            for key in (kind.create_id, "id", kind.poll.id_param):
                if key is not None and isinstance(data.get(key), str):
                    job_id = data[key]
                    break
        if job_id is None or job_id_problem(job_id) is not None:
            log.warning(
                "a create through the gateway returned no usable job id; not watched",
                kind=kind.name,
                account=account,
            )
            return
        self.pending[(account, kind.name, job_id)] = (labels, endpoints)
        self.flush()

    def flush(self) -> int:
        """Watch the ids creates returned while the state could not be written; how many
        are still waiting. Called after each create and on the daemon's queue tick. Each is
        a watch of the account that created it (labels and endpoints were checked before
        the create was forwarded)."""
        for (account, kind, job_id), (labels, endpoints) in list(self.pending.items()):
            specs = watch_specs([job_id], labels, endpoints, kind=kind)
            try:
                self.store.add_watches([replace(s, account=account) for s in specs], SOURCE)
            except DB_ERRORS as exc:
                log.warning(
                    "cannot watch a job created through the gateway yet; kept, trying again",
                    job_id=job_id,
                    account=account,
                    error=str(exc),
                    waiting=len(self.pending),
                )
                return len(self.pending)
            del self.pending[(account, kind, job_id)]
            log.info(
                "job created through the gateway is watched",
                job_id=job_id,
                kind=kind,
                account=account,
            )
        return 0

    # -- relayed --------------------------------------------------------------------------

    async def _relayed(self, holder: str, call: Call, account: str, deadline: float) -> Reply:
        """The gateway of the node holding the account's lease serves it (our token is
        valid there, bound to the same account: the key is shared)."""
        # access_token, labels, endpoints: the server passes on only those.
        headers = {name: ", ".join(values) for name, values in call.headers.items()}
        headers[RELAYED_HEADER] = "1"
        if call.content_type:
            headers["content-type"] = call.content_type
        target = f"{holder}{call.path}" + (f"?{call.query}" if call.query else "")
        try:
            response = await self._relay.request(
                call.method,
                target,
                content=call.body,
                headers=headers,
                timeout=max(1.0, deadline - time.monotonic()) + 30.0,
            )
        except (httpx.HTTPError, UnicodeError) as exc:  # UnicodeError: a header we cannot send
            log.warning("cannot relay to the lease holder's gateway", error=type(exc).__name__)
            if time.monotonic() < deadline:
                await asyncio.sleep(HOLDER_RETRY)
                return await self._serve(call, account, deadline)
            return self._limited(account, "the lease holder's gateway cannot be reached")
        try:  # the vendor's code, for our log line and metrics as on the holder
            code: int | None = parse_envelope(response)[0]
        except VendorError:
            code = None
        return Reply(
            response.status_code,
            response.content,
            response.headers.get("content-type", "application/json"),
            "relayed",
            code,
        )
