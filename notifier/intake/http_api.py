"""The HTTP intake API (``intake.listen``): watches and the event log for other hosts.

Every route needs ``Authorization: Bearer <one of intake.tokens>`` unless it was added as
public (``/openapi.json``; the vendor-callback path brings its own secret): deny by default,
so an unknown path without a token gets 401 too and nothing tells a scanner what exists.

A token limited to some accounts (``intake.tokens[].accounts``, a tenant's) sees only
them: another account's watch is the 404 of a watch that does not exist (never a 403, which
would say it does), a watch it adds can only be one of its accounts' (another is as unknown
as one never configured), and ``GET /v1/events`` pages through their events only, filtered
in the query before a page is cut (another account's event is no cursor either).
Handlers run on the daemon's event loop with the daemon's own store connection, as every
other writer of the loop does: their short transactions never race the loop's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from notifier import log as logs
from notifier.config import kind
from notifier.config.accounts import account_name
from notifier.intake.adding import LabelsTooMany, add_watches, find_watch
from notifier.intake.bodies import WatchRequest, first_problem, problems_of
from notifier.intake.openapi import JSON, openapi_document
from notifier.kinds import DEFAULT_KIND
from notifier.models import quoted
from notifier.store import DB_ERRORS, Store
from notifier.watchspec import ANY_ACCOUNT, AccountRule, id_problem, kind_check

log = logs.get_logger(component="intake")

#: Bodies over this get 413 (before they are read, when Content-Length says so).
MAX_BODY = 1024 * 1024
#: GET /v1/events page sizes.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: … and a page stops before its events' bodies pass this size (``next`` goes on from there).
MAX_PAGE_BYTES = 4 * 1024 * 1024
_LIMIT_RE = re.compile(r"[0-9]{1,6}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: A token and the accounts it is limited to (None: every account); a bare token is every
#: account's.
TokenGrant = str | tuple[str, Collection[str] | None]
#: Where a request's grant is kept: the accounts its token may use (None: every account).
GRANT: web.RequestKey[frozenset[str] | None] = web.RequestKey("grant", frozenset)
#: (method, route template, status, seconds) of every answered request, for the metrics.
Observer = Callable[[str, str, int, float], None]


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


class BadRequest(Exception):
    """A 400 whose message names the problem; ``problems``, when a body was validated, every
    problem found (``{"loc": [...], "msg": ...}``), the first of which is the message."""

    def __init__(self, message: str, problems: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems

    @classmethod
    def of(cls, problems: list[dict[str, Any]]) -> BadRequest:
        return cls(first_problem(problems), problems)


class UnsupportedMediaType(Exception):
    """A 415: the body is not ``application/json``."""


#: ``charset`` values a JSON body may name (JSON text is UTF-8: RFC 8259).
_UTF8 = ("utf-8", "utf8")


def _digest(token: str) -> bytes:
    # Compared as digests: equal lengths, so the comparison time says nothing about a token.
    # surrogatepass: a header that is not UTF-8 reaches us with lone surrogates in it.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class IntakeApi:
    """The routes, their checks and their settings; :meth:`app` builds a fresh application
    for each listener (a reload that moves the listener builds another)."""

    def __init__(
        self,
        store: Store,
        tokens: Sequence[TokenGrant],
        endpoint_names: Collection[str],
        *,
        client_timeout: float = 10.0,
        observer: Observer | None = None,
        accounts: AccountRule = ANY_ACCOUNT,
    ) -> None:
        self.store = store
        self.endpoint_names = list(endpoint_names)
        self.client_timeout = client_timeout
        self.observer = observer
        #: The configured accounts and the default one (follows reloads).
        self.accounts = accounts
        self._tokens: list[tuple[bytes, frozenset[str] | None]] = []
        self.set_tokens(tokens)
        self._routes: list[tuple[str, str, Handler, str]] = [
            ("POST", "/v1/watches", self.post_watches, "watches_add"),
            ("GET", "/v1/watches/{id}", self.get_watch, "watch_get"),
            ("DELETE", "/v1/watches/{id}", self.delete_watch, "watch_delete"),
            ("GET", "/v1/events", self.get_events, "events"),
            ("GET", "/openapi.json", self.openapi, "openapi"),
        ]
        #: Routes served without a bearer token.
        self.public: set[str] = {"openapi"}
        self._secret_paths: set[str] = set()

    def set_tokens(self, tokens: Sequence[TokenGrant]) -> None:
        """Takes effect for the next request (reload)."""
        grants = [(t, None) if isinstance(t, str) else t for t in tokens]
        self._tokens = [
            (_digest(token), None if names is None else frozenset(names)) for token, names in grants
        ]

    def add_route(
        self,
        method: str,
        path: str,
        handler: Handler,
        name: str,
        *,
        public: bool,
        secret_path: bool = False,
    ) -> None:
        """Another route on the same listener, with the same limits, logs and metrics
        (before :meth:`app`). ``public``: no bearer token (the route checks its own secret);
        ``secret_path``: its path carries a secret, so the log shows its template instead."""
        self._routes.append((method, path, handler, name))
        if public:
            self.public.add(name)
        if secret_path:
            self._secret_paths.add(name)

    def runner_options(self) -> dict[str, Any]:
        """For the AppRunner: a connection must deliver its request headers within
        ``client_timeout`` of opening (or of the last answer): aiohttp closes a connection
        still waiting for a whole request when its keep-alive timer fires. After an answer
        to a request whose body was not read (413, 408), the rest of the body is read and
        dropped for as long again, then the connection is closed."""
        return {"keepalive_timeout": self.client_timeout, "lingering_time": self.client_timeout}

    def app(self) -> web.Application:
        app = web.Application(
            client_max_size=MAX_BODY, middlewares=[self._logged, self._errors, self._auth]
        )
        for method, path, handler, name in self._routes:
            app.router.add_route(method, path, handler, name=name)
        return app

    # -- middlewares ----------------------------------------------------------------------

    @staticmethod
    def _route(request: web.Request) -> tuple[str | None, str]:
        route = request.match_info.route
        resource = route.resource
        return route.name, resource.canonical if resource is not None else "unmatched"

    @web.middleware
    async def _logged(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """One line per request: method, path (never the query, never a header), status."""
        started = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            seconds = time.monotonic() - started
            name, template = self._route(request)
            log.info(
                "intake request",
                method=request.method,
                path=template if name in self._secret_paths else request.path,
                status=status,
                duration_ms=round(seconds * 1000, 1),
            )
            if self.observer is not None:
                self.observer(request.method, template, status, seconds)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every answer but a success is JSON ``{"error": "..."}``; nothing escapes as a 500
        page with a traceback."""
        try:
            return await handler(request)
        except BadRequest as exc:
            if exc.problems is None:
                return _error(400, str(exc))
            return web.json_response({"error": str(exc), "problems": exc.problems}, status=400)
        except UnsupportedMediaType as exc:
            return _error(415, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body over {MAX_BODY} bytes")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",)}
            return _error(exc.status, exc.reason.lower(), **headers)
        except TimeoutError:
            response = _error(408, f"request not received within {self.client_timeout:g}s")
            response.force_close()
            return response
        except DB_ERRORS as exc:
            log.warning("intake request failed on the state", error=str(exc))
            return _error(
                503, "the state database is unavailable; try again", **{"Retry-After": "1"}
            )
        except Exception:
            log.exception("intake request failed", method=request.method, path=request.path)
            return _error(500, "internal error")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        name, _template = self._route(request)
        if name not in self.public:
            found, grant = self._grant(request)
            if not found:
                # Nothing more: not which part was wrong, not whether the path exists.
                return _error(401, "unauthorized", **{"WWW-Authenticate": "Bearer"})
            request[GRANT] = grant
        return await handler(request)

    def _grant(self, request: web.Request) -> tuple[bool, frozenset[str] | None]:
        """Whether the request bears a token, and the accounts it may use (None: every
        account; a token listed twice: what either entry allows)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False, None
        given = _digest(token.strip())
        found = False
        grant: frozenset[str] | None = frozenset()
        for known, names in self._tokens:  # every one, whichever matches
            match = hmac.compare_digest(given, known)
            found |= match
            if match and grant is not None:
                grant = None if names is None else grant | names
        return found, grant if found else None

    @staticmethod
    def grant(request: web.Request) -> frozenset[str] | None:
        """The accounts the request's token may use (None: every account)."""
        return request.get(GRANT)

    def account_rule(self, request: web.Request) -> AccountRule:
        """The accounts as the request's token sees them (only its own, when limited)."""
        return self.accounts.limited(self.grant(request))

    # -- reading requests -----------------------------------------------------------------

    @staticmethod
    def _check_content_type(request: web.Request) -> None:
        """``application/json``, with at most a UTF-8 ``charset``; else 415 (before reading)."""
        given = request.headers.get("Content-Type")
        if given is None or not _is_json(given):
            shown = "none" if given is None else quoted(given)
            raise UnsupportedMediaType(
                f"Content-Type must be {JSON} (optionally with charset=utf-8), got {shown}"
            )

    async def _json_body(self, request: web.Request) -> dict[str, Any]:
        self._check_content_type(request)
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_BODY, actual_size=request.content_length
            )
        async with asyncio.timeout(self.client_timeout):
            raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest("body is not valid JSON") from None
        except RecursionError:
            raise BadRequest("body is nested too deeply") from None
        if not isinstance(body, dict):
            raise BadRequest(f"body must be a JSON object, got {kind(body)}")
        return body

    @staticmethod
    def _job_id(request: web.Request) -> str:
        job_id = request.match_info["id"]
        problem = id_problem(job_id)
        if problem:
            raise BadRequest(problem)
        return job_id

    def _account(self, request: web.Request) -> str | None:
        """``?account=`` (absent: the token's default account), or None when the token may
        not use it: for that token the account's watches do not exist (a 404, as for an
        unknown id). Any well-formed name otherwise: a removed account's watches stay."""
        raw = request.query.get("account")
        rule = self.account_rule(request)
        if raw is None:
            if rule.default is None:
                raise BadRequest(f"account: {rule.missing()}")
            return rule.default
        try:
            name = account_name(raw)
        except ValueError as exc:
            raise BadRequest(f"account: {exc}") from None
        grant = self.grant(request)
        return name if grant is None or name in grant else None

    @staticmethod
    def _kind(request: web.Request) -> str:
        """``?kind=`` (absent: lip_sync), in the kind table's words when it is none."""
        name = request.query.get("kind", DEFAULT_KIND)
        problem = kind_check(name)
        if problem:
            raise BadRequest(f"kind: {problem}")
        return name

    # -- handlers -------------------------------------------------------------------------

    async def post_watches(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            context = {"endpoints": self.endpoint_names, "accounts": self.account_rule(request)}
            wanted = WatchRequest.model_validate(body, context=context)
        except ValidationError as exc:
            raise BadRequest.of(problems_of(exc)) from None
        try:
            outcome = add_watches(
                self.store,
                wanted.ids,
                wanted.stored_labels,
                wanted.endpoints,
                self.endpoint_names,
                reopen=wanted.reopen,
                kind=wanted.kind,
                account=wanted.stored_account,
                accounts=self.accounts,
            )
        except LabelsTooMany as exc:
            # The body is fine on its own; the labels a watch has already are in the way.
            return _error(409, f"labels: {exc}")
        # Counts only: the ids are the caller's business, and a batch would flood the log.
        log.info(
            "watches added over http",
            ids=len(outcome.ids),
            new=outcome.added,
            finished=len(outcome.finished),
        )
        answer = {
            "accepted": outcome.watched,
            "new": outcome.added,
            "finished": list(outcome.finished),
            "kind": wanted.kind,
            "account": wanted.stored_account,
        }
        return web.json_response(answer, status=202)

    async def get_watch(self, request: web.Request) -> web.Response:
        job_id, kind_name = self._job_id(request), self._kind(request)
        account = self._account(request)
        row = None if account is None else find_watch(self.store, job_id, kind_name, account)
        if row is None:
            return _error(404, f"no watch for job {job_id}")
        return web.json_response(row, dumps=_dumps)

    async def delete_watch(self, request: web.Request) -> web.Response:
        job_id, kind_name = self._job_id(request), self._kind(request)
        account = self._account(request)
        if account is None or not self.store.remove_watches(
            [job_id], kind=kind_name, account=account
        ):
            return _error(404, f"no watch for job {job_id}")
        return web.Response(status=204)

    async def get_events(self, request: web.Request) -> web.Response:
        after = request.query.get("after") or None
        text = request.query.get("limit", str(DEFAULT_LIMIT))
        # ASCII digits only ("²".isdigit() is true) and a few of them (int() of 5,000 is slow).
        if not _LIMIT_RE.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
            raise BadRequest(
                f"limit: must be a whole number from 1 to {MAX_LIMIT}, got {quoted(text)}"
            )
        events = self.store.events_after(
            after, int(text), MAX_PAGE_BYTES, accounts=self.grant(request)
        )
        if events is None:
            return _error(
                404,
                f"unknown event {after}: never recorded, or pruned by retention; "
                "page from the start without after",
            )
        following = events[-1]["id"] if events else after
        return web.json_response({"events": events, "next": following}, dumps=_dumps)

    async def openapi(self, request: web.Request) -> web.Response:
        found, grant = self._grant(request)
        document = openapi_document(
            max_limit=MAX_LIMIT,
            default_limit=DEFAULT_LIMIT,
            max_body=MAX_BODY,
            client_timeout=self.client_timeout,
            # Names of the config, for a client with a token only: none of a scanner's business.
            endpoint_names=self.endpoint_names if found else None,
            accounts=self.accounts.limited(grant) if found else None,
        )
        return web.json_response(document)


def _is_json(content_type: str) -> bool:
    """``application/json``, any case, with no parameter but ``charset=utf-8``."""
    media, *params = content_type.split(";")
    if media.strip().lower() != JSON:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in _UTF8:
            return False
    return True


def _dumps(value: Any) -> str:
    # ASCII: any text the state holds (a stray lone surrogate too) can be sent.
    return json.dumps(value, default=str)
