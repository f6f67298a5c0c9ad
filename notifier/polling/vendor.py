"""Chanjing's open API: the only module that knows its wire format.

Every call goes through the shared :class:`~notifier.polling.ratelimit.RateLimiter`, token calls
included, and is sent only while this node holds the vendor lease (``notifier.polling.lease``).
The access token is cached in the state store because issuing a new one revokes the old one:
the daemon, a restarted daemon and CLI commands must all reuse it.
"""

from __future__ import annotations

import asyncio
import contextvars
import secrets
import ssl
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx

from notifier import kinds, net
from notifier.kinds import Kind, Listing
from notifier.log import get_logger, redactor
from notifier.models import DEFAULT_ACCOUNT, JobDetail, has_surrogate
from notifier.polling.lease import IN_FLIGHT, LeaseKeeper, LeaseLost
from notifier.polling.ratelimit import (
    LATE_ARRIVAL,
    VENDOR_USER_TIMEOUT,
    LimiterSettings,
    Priority,
    RateLimiter,
)
from notifier.store import Store

TOKEN_PATH = "/open/v1/access_token"
DETAIL_PATH = kinds.LIP_SYNC.poll.path
assert kinds.LIP_SYNC.listing is not None
LIST_PATH = kinds.LIP_SYNC.listing.path

log = get_logger(component="vendor")
#: How long the current task's last call waited for its turn at the limiter.
_waited: contextvars.ContextVar[float] = contextvars.ContextVar("waited", default=0.0)

CODE_OK = 0
CODE_TOKEN_INVALID = 10400
CODE_BAD_PARAMETER = 40000
CODE_QPS = 40001
CODE_INTERNAL = (50000, 51000)

#: Refresh this long before the vendor's expiry, so no call races the deadline.
TOKEN_REFRESH_MARGIN = 300.0
#: While another process fetches a token: look at the store and its lock this often, and
#: give up on a holder after this long (a fetch takes the call's timeout at most).
TOKEN_LOCK_RETRY = 0.05
TOKEN_LOCK_PATIENCE = 30.0
#: A 10400 on a token with more than TOKEN_REFRESH_MARGIN left is not its expiry: the vendor
#: keeps one live token per app_id, so another program fetched one and revoked ours.
TOKEN_REVOKED_MESSAGE = (
    "the vendor revoked our access token: another program fetched a token with this app_id"
)
TOKEN_REVOKED_HINT = (
    "route your application through the gateway (gateway.listen) or run one daemon per "
    "account; every token fetch revokes the previous one"
)
# The lease's margin assumes a request reaches the vendor within IN_FLIGHT of the gate's last
# look; the kernel's bound on our sockets (plus the last segment's trip) is what makes it so.
assert LATE_ARRIVAL <= IN_FLIGHT, "a late vendor request could land in the next holder's second"


@dataclass(frozen=True)
class ListPage:
    """One list answer: the jobs we could read, the page count, and how many items came
    back at all (a page size cap shows in ``received``, whatever we could parse)."""

    details: list[JobDetail]
    pages: int
    received: int


class Answer(NamedTuple):
    """A vendor answer: its envelope's code (None: not an envelope), msg and data, and the
    response itself (the gateway hands it on as it came)."""

    code: int | None
    msg: str
    data: Any
    response: httpx.Response


def envelope(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    """The vendor's answer shape, with a fresh trace id as every real answer has."""
    return {"trace_id": secrets.token_hex(16), "code": code, "msg": msg, "data": data}


class VendorError(Exception):
    """A call that did not give an answer we can use now; the caller retries later."""


class UnknownJob(Exception):
    """The vendor rejects this job id (code 40000): polling it again cannot help."""


class ParameterRejected(VendorError):
    """Code 40000 for a request of ours (not a job id): e.g. a page size the vendor caps."""


class WaitedTooLong(VendorError):
    """No turn at the limiter within the caller's bound: nothing was sent."""


class CredentialsRejected(VendorError):
    """The token endpoint refused app_id/secret_key: an operator has to fix the config."""


def _clean(value: Any, depth: int = 0) -> Any:
    """``value`` safe to write and to send: lone surrogates escaped in every string (they
    would fail the event body and every write of it), nesting cut at 32 levels."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode() if has_surrogate(value) else value
    if depth > 32:
        return None
    if isinstance(value, Mapping):
        return {_clean(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    return value


def parse_detail(
    job_id: str, data: object, kind: Kind = kinds.LIP_SYNC, account: str = DEFAULT_ACCOUNT
) -> JobDetail:
    """Turn a detail ``data`` object of ``kind`` into a JobDetail (its status turned into a
    phase by the kind's table), or raise ValueError naming the field. ``account``: the one
    whose client asked (the answer is about that account's job)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"detail data is {type(data).__name__}, expected an object")

    def integer(name: str, default: int | None = None) -> int:
        value = data.get(name)
        if value is None or value == "":
            if default is None:
                raise ValueError(f"detail data has no {name!r}")
            return default
        if isinstance(value, bool):
            raise ValueError(f"detail {name!r} is a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond float
            raise ValueError(f"detail {name!r} is not a number: {str(value)[:40]!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"detail {name!r} is not finite")
        return int(number)

    def text(name: str) -> str:
        value = data.get(name)
        return str(_clean("" if value is None else str(value)))

    status: int | None = None
    if kind.numeric_status:
        status = integer(kind.status_field)
        phase = kind.phase({**data, kind.status_field: status})
    else:
        if data.get(kind.status_field) is None:
            raise ValueError(f"detail data has no {kind.status_field!r}")
        phase = kind.phase(data)
    progress = 0
    if kind.progress_field is not None:
        progress = max(0, min(100, integer(kind.progress_field, 0)))
    return JobDetail(
        id=job_id,
        status=status,
        progress=progress,
        msg=_clean(kind.message(data)),
        video_url=text("video_url"),
        preview_url=text("preview_url"),
        duration=max(0, integer("duration", 0)),
        create_time=max(0, integer("create_time", 0)),
        raw=data,
        kind=kind.name,
        phase=phase,
        data=None if kind.payload_fields else {**_clean(dict(data)), "id": job_id},
        account=account,
    )


def parse_envelope(response: httpx.Response) -> tuple[int, str, Any]:
    """(code, msg, data) of a vendor answer; VendorError for anything else."""
    ctype = response.headers.get("content-type", "").split(";")[0].strip() or "no content-type"
    if response.status_code != 200:
        raise VendorError(f"HTTP {response.status_code} ({ctype})")
    try:
        body = response.json()
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise VendorError(f"answer is not JSON ({ctype})") from None
    if not isinstance(body, dict):
        raise VendorError("answer is not a JSON object")
    code = body.get("code")
    if isinstance(code, bool) or not isinstance(code, int):
        raise VendorError(f"answer has no integer code: {str(code)[:40]!r}")
    msg = body.get("msg")
    return code, "" if msg is None else str(msg)[:500], body.get("data")


#: The most of one answer we read (raw, and again decoded): a list page of 100 jobs is ~50 KB.
MAX_ANSWER = 4 * 1024 * 1024
#: Headers that describe the body as it came, not as we hand it on (decoded, whole).
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def _read_capped(response: httpx.Response) -> bytes:
    if response.is_stream_consumed:  # read already (a transport that hands bodies whole)
        body = response.content
        if len(body) > MAX_ANSWER:
            raise VendorError(f"answer over {MAX_ANSWER} bytes")
        return body
    buf = bytearray()
    async for chunk in response.aiter_raw():
        buf += chunk
        if len(buf) > MAX_ANSWER:
            raise VendorError(f"answer over {MAX_ANSWER} bytes")
    return bytes(buf)


def _decoded(raw: bytes, encoding: str) -> bytes:
    """``raw`` decoded by one gzip or deflate layer, within MAX_ANSWER (we ask for identity)."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    if not codings or codings == ["identity"]:
        return raw
    if len(codings) > 1 or codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise VendorError(f"answer in an encoding we do not read: {encoding[:40]!r}")
    wbits = zlib.MAX_WBITS | 16 if "gzip" in codings[0] else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    try:
        body = decoder.decompress(raw, MAX_ANSWER + 1)
    except zlib.error:
        raise VendorError(f"answer is not valid {codings[0]}") from None
    if len(body) > MAX_ANSWER or decoder.unconsumed_tail:
        raise VendorError(f"answer over {MAX_ANSWER} bytes once decoded")
    return body


def _expiry(value: object, now: float) -> float:
    """``expire_in`` is documented as a unix timestamp; tolerate a duration too."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise VendorError(f"token answer has no numeric expire_in: {str(value)[:40]!r}")
    # Anything before 2001 cannot be a timestamp; read it as seconds from now.
    return float(value) if value > 1e9 else now + float(value)


@dataclass(frozen=True)
class VendorSettings:
    """The vendor account a client speaks for (``chanjing`` but its ``qps``, which is the
    limiter's): where it is and its credentials, together, so that one account is one
    object (several accounts, issue 22, add a ``name`` here). A client is made for one
    account: another one is another client, so its token cache and connections never cross
    accounts."""

    base_url: str
    app_id: str
    #: Kept out of repr: settings may be logged or shown in a traceback.
    secret_key: str = field(repr=False)
    #: The account's name (its details and watches are that account's).
    account: str = DEFAULT_ACCOUNT


class VendorClient:
    def __init__(
        self,
        settings: VendorSettings,
        *,
        limiter: RateLimiter,
        store: Store,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        lease: LeaseKeeper | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``settings``: the account, fixed for the client's life (a reload with another
        one makes another client). ``lease``: the gate of every call (None: this process is
        the only caller). ``timeout``: the most one call and its answer may take.
        ``verify``: the TLS context (httpx's default when True; a shared one saves loading
        the CA bundle again for each client). ``transport``: used as given (tests); by
        default one whose sockets carry TCP_USER_TIMEOUT = VENDOR_USER_TIMEOUT, so a request
        we gave up on cannot reach the vendor later than LATE_ARRIVAL after it was written."""
        self.settings = settings
        base_url = settings.base_url.rstrip("/")
        self._app_id = settings.app_id
        #: Kinds whose list call the vendor refused without a type (see Listing.types).
        self._typed_lists: set[str] = set()
        self._lease = lease
        # httpcore calls this as it is about to write a request: the last look at the lease.
        self._extensions = {"trace": self._last_look} if lease is not None else {}
        self._secret_key = settings.secret_key
        self._limiter = limiter
        self._store = store
        self._clock = clock
        self._account = f"{base_url}#{settings.app_id}"
        #: Ends every connection and HTTP error: the operator's first question is "where to?"
        self._where = f"(chanjing.base_url {base_url})"
        self._answer_within = timeout
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            transport=transport or net.transport(VENDOR_USER_TIMEOUT, verify=verify),
            # identity: a compressed answer is decoded by us, within MAX_ANSWER.
            headers={"user-agent": "chanjing-notifier", "accept-encoding": "identity"},
            verify=verify,
        )
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()
        self.token_refreshes = 0
        #: Our tokens revoked by another fetcher while good for a while yet (see _forget_token).
        self.token_revocations = 0
        #: Called once per such revocation (the daemon's metric and operational events).
        self.on_token_revoked: Callable[[], None] | None = None
        #: Why the vendor refuses our credentials, until a token is issued again (/healthz).
        self.credentials_problem: str | None = None
        #: Called after every vendor answer with (endpoint, code or error label, seconds).
        self.observer: Callable[[str, str, float], None] | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    def secrets(self) -> list[str]:
        """Values that must never be logged (for the log redactor)."""
        return [self._secret_key] + ([self._token[0]] if self._token else [])

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    @staticmethod
    def last_wait() -> float:
        """Seconds the calling task's last call waited for its turn at the limiter."""
        return _waited.get()

    def may_call(self) -> bool:
        """Whether a call may be sent now (this node holds the vendor lease)."""
        return self._lease is None or self._lease.may_call()

    def _check_lease(self) -> None:
        if self._lease is not None:
            self._lease.check()

    async def _last_look(self, event: str, _info: dict[str, Any]) -> None:
        """Right before the request's first byte, after any wait for the limiter, a pooled
        connection, connect and TLS: a node frozen or slow since its turn came sends nothing
        once its lease is gone (LeaseLost aborts the request; httpx passes it through)."""
        if event.endswith("send_request_headers.started"):
            self._check_lease()

    async def _exchange(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        priority: bool | int = False,
        wait: float | None = None,
        **kwargs: Any,
    ) -> Answer:
        """One budgeted request and its answer, read as an envelope where it is one.

        ``wait``: give up (:class:`WaitedTooLong`, nothing sent) after this long at the
        limiter. LeaseLost when the lease is not held: nothing was sent, nothing observed."""
        self._check_lease()  # no turn at the limiter for a call that cannot go
        started = time.monotonic()
        label: str | None = None  # None: not sent (closing, lease lost), not counted
        try:
            try:
                async with asyncio.timeout(wait) as scope:
                    async with self._limiter.call(priority=priority) as slot:
                        scope.reschedule(None)  # the wait is bounded, the call is not
                        _waited.set(time.monotonic() - started)
                        started, label = time.monotonic(), "error"
                        response = await self._fetch(
                            method, path, on_answer=slot.answered, **kwargs
                        )
            except TimeoutError:
                raise WaitedTooLong(f"no turn at the limiter within {wait:g}s") from None
            try:
                code, msg, data = parse_envelope(response)
            except VendorError as exc:
                label = "bad_answer"
                return Answer(None, str(exc), None, response)
            label = str(code)
            return Answer(code, msg, data, response)
        except LeaseLost:
            label = None
            raise
        except WaitedTooLong:
            raise
        except httpx.TimeoutException:
            label = "timeout"
            raise VendorError(f"timed out {self._where}") from None
        except httpx.HTTPError as exc:
            label = "http_error"
            raise VendorError(f"connection failed: {type(exc).__name__} {self._where}") from None
        except VendorError:
            label = "bad_answer"  # too big, or in an encoding we do not read
            raise
        finally:
            if self.observer is not None and label is not None:
                self.observer(endpoint, label, time.monotonic() - started)

    async def _fetch(
        self,
        method: str,
        path: str,
        *,
        on_answer: Callable[[], None] = lambda: None,
        **kwargs: Any,
    ) -> httpx.Response:
        """The request and its whole answer within the client's timeout (a vendor that
        trickles bytes cannot hold a place at the limiter for longer), read raw and capped
        at MAX_ANSWER, then decoded here within the same cap: httpx would decode every
        layer of ``Content-Encoding: gzip, gzip`` before any limit applied.

        ``on_answer``: called once the request surely arrived (an answer's status line came)
        or surely was not sent (the lease gate stopped it); a call that fails otherwise
        counts at the limiter for LATE_ARRIVAL longer."""
        request = self._http.build_request(method, path, extensions=self._extensions, **kwargs)
        try:
            async with asyncio.timeout(self._answer_within):
                try:
                    response = await self._http.send(request, stream=True)
                except LeaseLost:
                    on_answer()  # stopped before its first byte: it cannot arrive late
                    raise
                on_answer()
                try:
                    raw = await _read_capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout("no whole answer in time", request=request) from None
        body = _decoded(raw, response.headers.get("content-encoding", ""))
        headers = [
            (k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS
        ]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        priority: bool | int = False,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> Answer:
        """One budgeted call; retries 40001 after the shared pause. VendorError for an
        answer that is not an envelope. ``deadline`` (monotonic): stop waiting for a turn
        then (:class:`WaitedTooLong`); None: five tries."""
        tries = 0
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            answer = await self._exchange(
                endpoint, method, path, priority=priority, wait=wait, **kwargs
            )
            if answer.code is None:
                raise VendorError(f"{answer.msg} {self._where}")
            if answer.code != CODE_QPS:
                return answer
            self._limiter.throttle()
            tries += 1
            if deadline is None and tries >= 5:
                raise VendorError("vendor keeps answering 40001 (over the QPS limit)")

    async def _fetch_token(self) -> tuple[str, float]:
        code, msg, data, _ = await self._call(
            "access_token",
            "POST",
            TOKEN_PATH,
            priority=Priority.TOKEN,
            json={"app_id": self._app_id, "secret_key": self._secret_key},
        )
        if code != CODE_OK:
            if code == CODE_BAD_PARAMETER:
                self.credentials_problem = f"vendor rejected app_id/secret_key: {msg} (code {code})"
                raise CredentialsRejected(self.credentials_problem)
            raise VendorError(f"token request failed: {msg} (code {code})")
        if not isinstance(data, Mapping) or not isinstance(data.get("access_token"), str):
            raise VendorError("token answer has no access_token")
        token = str(data["access_token"])
        if not token:
            raise VendorError("token answer has an empty access_token")
        self.credentials_problem = None
        self.token_refreshes += 1
        return token, _expiry(data.get("expire_in"), self._clock())

    async def token(self) -> str:
        """A valid token: from memory, else the store, else one fresh fetch (single-flight
        in this process by an asyncio lock, across processes by the store's token lock)."""
        if self._token and self._token[1] - TOKEN_REFRESH_MARGIN > self._clock():
            return self._token[0]
        async with self._token_lock:
            if self._token and self._token[1] - TOKEN_REFRESH_MARGIN > self._clock():
                return self._token[0]
            stored = self._stored_token()
            if stored is None:
                stored = await self._refresh_token()
            self._token = stored
            return stored[0]

    def _stored_token(self) -> tuple[str, float] | None:
        """The store's token if it is good for a while yet (another node's, or ours)."""
        cached = self._store.get_token(self._account)
        if cached is None or cached[1] - TOKEN_REFRESH_MARGIN <= self._clock():
            return None
        redactor.add([cached[0]])
        return cached

    async def _refresh_token(self) -> tuple[str, float]:
        """Fetch and store a token under the store's token lock, unless whoever held the lock
        meanwhile stored a good one: issuing a token revokes the others' (every node's).

        The lock is tried without waiting, again every TOKEN_LOCK_RETRY on the loop. A holder
        that never lets go (frozen mid-fetch) is given up on after TOKEN_LOCK_PATIENCE: a
        fetch of ours then revokes only the token of a node that cannot use it."""
        waited_until = time.monotonic() + TOKEN_LOCK_PATIENCE
        while not self._store.try_token_lock():
            await asyncio.sleep(TOKEN_LOCK_RETRY)
            stored = self._stored_token()
            if stored is not None:
                return stored  # the holder's fetch: ours would revoke it
            if time.monotonic() > waited_until:
                log.warning(
                    "another process holds the vendor token lock for too long; fetching anyway",
                    waited=TOKEN_LOCK_PATIENCE,
                )
                return await self._fetch_and_save()
        try:
            stored = self._stored_token()  # another process may have just stored one
            return stored if stored is not None else await self._fetch_and_save()
        finally:
            self._store.release_token_lock()

    async def _fetch_and_save(self) -> tuple[str, float]:
        """Fetch a token and store it; under a lease the save is fenced (see
        :meth:`Store.save_token_fenced`), on the path after TOKEN_LOCK_PATIENCE too."""
        lease = self._lease
        # Before the fetch is sent, on the database's clock: whose fetch is newer is decided
        # there, whatever this host's clocks say.
        sent = self._store.database_clock() if lease is not None else 0.0
        fresh = await self._fetch_token()
        # Masked in every log line from the moment it exists, whatever logs it.
        redactor.add([fresh[0]])
        if lease is None:
            self._store.save_token(self._account, *fresh)
            return fresh
        if self._store.save_token_fenced(
            self._account, *fresh, sent=sent, lease=lease.name, owner=lease.owner
        ):
            return fresh
        stored = self._stored_token()
        log.info(
            "a vendor token fetched by this node was not stored: it lost the vendor lease "
            "meanwhile, or a newer token is stored",
            node=lease.node,
            using_stored=stored is not None,
        )
        if stored is not None:
            return stored
        raise LeaseLost(f"token not stored: node {lease.node} lost the vendor lease meanwhile")

    async def _forget_token(self, token: str) -> None:
        """Drop a token the vendor answered 10400 to. Only the first of the calls that got
        10400 on it finds it still cached (the lock orders them): that one tells whether
        someone else revoked it, so a revocation is reported once."""
        async with self._token_lock:
            if self._token and self._token[0] == token:
                if self._revoked_by_another(*self._token):
                    self._report_revocation(self._token[1])
                self._token = None
            self._store.drop_token(self._account, token)

    def _revoked_by_another(self, token: str, expire_at: float) -> bool:
        """Not near its expiry, and not replaced in the store by a process sharing our state
        (a node or CLI command fetching for its own reason, which reports it if it must)."""
        if expire_at - TOKEN_REFRESH_MARGIN <= self._clock():
            return False
        stored = self._store.get_token(self._account)
        return stored is None or stored[0] == token

    def _report_revocation(self, expire_at: float) -> None:
        """A warning naming cause and fix (never the token), the count, the daemon's hook."""
        self.token_revocations += 1
        log.warning(
            TOKEN_REVOKED_MESSAGE,
            hint=TOKEN_REVOKED_HINT,
            token_seconds_left=round(expire_at - self._clock()),
            revocations=self.token_revocations,
        )
        if self.on_token_revoked is not None:
            self.on_token_revoked()

    async def _authorized(self, endpoint: str, method: str, path: str, **kwargs: Any) -> Answer:
        """A call with the access token; on 10400 refresh once and retry. Returns the
        answer for any other code."""
        headers = kwargs.pop("headers", {})
        for attempt in range(2):
            token = await self.token()
            answer = await self._call(
                endpoint, method, path, headers={**headers, "access_token": token}, **kwargs
            )
            if answer.code == CODE_TOKEN_INVALID and attempt == 0:
                # Revoked or expired early (someone issued a new one): refresh once, retry.
                await self._forget_token(token)
                continue
            if answer.code == CODE_TOKEN_INVALID:
                raise VendorError("access token rejected even after a refresh (code 10400)")
            return answer
        raise AssertionError("unreachable")

    async def forward(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        content: bytes = b"",
        content_type: str | None = None,
        priority: int = Priority.INTERACTIVE,
        wait: float = 10.0,
    ) -> Answer:
        """An application's call (the gateway's), sent as it came but with our token, under
        the one budget. A 40001 is retried while ``wait`` lasts, a 10400 once after a
        refresh; :class:`WaitedTooLong` when no turn came within ``wait``. The answer is
        the vendor's as it came, envelope or not."""
        deadline = time.monotonic() + wait
        headers = {"content-type": content_type} if content_type else {}
        target = f"{path}?{query}" if query else path
        try:
            # A token refresh waits within the same bound. The TimeoutError is raised as the
            # block ends (inside it, the expiry is a cancellation), so it is caught out here.
            async with asyncio.timeout(wait):
                await self.token()
        except TimeoutError:
            raise WaitedTooLong(f"no vendor token within {wait:g}s") from None
        return await self._authorized(
            "forward",
            method,
            target,
            priority=priority,
            deadline=deadline,
            headers=headers,
            content=content,
        )

    async def list_page(self, page: int, page_size: int, kind: Kind = kinds.LIP_SYNC) -> ListPage:
        """One page of the account's jobs of ``kind`` (a kind listed by page), newest first,
        and the number of pages.

        Items that cannot be parsed are skipped: one odd job must not hide the others.
        """
        _listing(kind, "page")
        return await self._list(kind, {"page": page, "page_size": page_size}, page)

    async def list_ids(self, job_ids: list[str], kind: Kind) -> ListPage:
        """The jobs among ``job_ids`` of ``kind`` (a kind listed by ids: AI creation), in one
        call of at most the kind's page size."""
        listing = _listing(kind, "ids")
        if len(job_ids) > listing.max_page_size:
            raise ValueError(f"at most {listing.max_page_size} ids in one {kind.name} list call")
        body: dict[str, Any] = {
            listing.ids_param: job_ids,
            "page": 1,
            "page_size": listing.max_page_size,
        }
        if kind.name not in self._typed_lists:
            try:
                return await self._list(kind, body, 1)
            except ParameterRejected:
                if listing.types_param is None:
                    raise
                # The vendor wants the kind's type: from now on each type is asked for.
                self._typed_lists.add(kind.name)
                log.warning(
                    "list call refused without a type; asking for each type from now on",
                    kind=kind.name,
                    types=list(listing.types),
                )
        details: list[JobDetail] = []
        items = 0
        for value in listing.types:
            page = await self._list(kind, {**body, str(listing.types_param): value}, 1)
            details += page.details
            items += page.received
        return ListPage(details, 1, items)

    async def _list(self, kind: Kind, body: dict[str, Any], page: int) -> ListPage:
        listing = kind.listing
        assert listing is not None
        # Priority at the limiter: one list call stands for up to a page of detail calls.
        code, msg, data, _ = await self._authorized(
            "list", "POST", listing.path, priority=True, json=body
        )
        if code == CODE_BAD_PARAMETER:
            raise ParameterRejected(f"{msg or 'parameter error'} (code {code})")
        if code != CODE_OK:
            raise VendorError(f"{msg or 'error'} (code {code})")
        if not isinstance(data, Mapping) or not isinstance(data.get(listing.items), list):
            raise VendorError(f"{kind.name} list answer has no data.{listing.items} array")
        details = []
        items = data[listing.items]
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get(listing.id_field), str):
                try:
                    details.append(
                        parse_detail(item[listing.id_field], item, kind, self.settings.account)
                    )
                except ValueError:
                    continue
        info = data.get(listing.page_info)
        total = info.get(listing.pages) if isinstance(info, Mapping) else None
        pages = total if isinstance(total, int) and not isinstance(total, bool) else page
        return ListPage(details, max(pages, 0), len(items))

    async def detail(
        self, job_id: str, *, priority: bool = False, kind: Kind = kinds.LIP_SYNC
    ) -> JobDetail:
        """The job's current state. UnknownJob for a rejected id, VendorError otherwise.
        ``priority``: ahead of ordinary calls at the limiter (a vendor callback's poll)."""
        poll = kind.poll
        where: dict[str, Any] = (
            {"params": {poll.id_param: job_id}}
            if poll.method == "GET"
            else {"json": {poll.id_param: job_id}}
        )
        code, msg, data, _ = await self._authorized(
            "detail", poll.method, poll.path, priority=priority, **where
        )
        if code == CODE_OK:
            try:
                return parse_detail(job_id, data, kind, self.settings.account)
            except ValueError as exc:
                raise VendorError(f"unusable detail answer: {exc}") from None
        if code == CODE_BAD_PARAMETER:
            raise UnknownJob(msg or "parameter error")
        raise VendorError(f"{msg or 'error'} (code {code})")


def _listing(kind: Kind, by: str) -> Listing:
    if kind.listing is None or kind.listing.by != by:
        raise ValueError(f"{kind.name} has no list call by {by}")
    return kind.listing


async def check_credentials(settings: VendorSettings, *, timeout: float = 10.0) -> None:
    """One token call with the account's credentials, its token kept nowhere (``check
    --online``).

    CredentialsRejected when the vendor refuses them; VendorError (naming ``base_url``) when
    no usable answer came. A scratch state holds nothing: the client wants one for its token
    cache, which this call never reads."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as scratch, Store(Path(scratch) / "check.db") as store:
        client = VendorClient(
            settings, limiter=RateLimiter(LimiterSettings(1)), store=store, timeout=timeout
        )
        try:
            await client._fetch_token()
        finally:
            await client.aclose()
