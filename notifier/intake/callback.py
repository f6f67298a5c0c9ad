"""``POST /v1/chanjing/callback/{callback_token}[/{account}/{kind} | /{kind}]``: the vendor's
callback as a fast path.

The vendor's callback body does not say its kind (lip-sync's, video's and an avatar's look
alike) nor its account, so the route carries them: ``…/{token}/video`` for a video job,
lip-sync when absent (the gateway puts the right URL into the creates it forwards), and
``…/{token}/{account}/{kind}`` for a job of another account than the default one (the forms
without an account mean the default account: the only one, or the one marked default). An
account the config does not have, or a form without one where no account is the default, is
a 400 that says so (the token was right: the caller is ours). The vendor POSTs a job's detail
(as an envelope, or as its bare ``data``) to the ``callback`` URL given at creation, once,
unsigned, without retries. Anyone who learns the URL can forge one, so the body is only a
hint: for a watched id the daemon's hook is asked to poll it now; an id not watched yet is
handed to the ``verify`` hook, which polls it first and makes the watch (with
``intake.labels``/``intake.endpoints``) only if the vendor knows the job. The event comes
from that poll's answer. The answer is 202 at once (the hooks never wait for the vendor). A
wrong token gets the 404 of any unknown path, after a comparison that takes as long
whatever the token.

The vendor calls back once and never retries, so a callback whose handling fails on the
state (a PostgreSQL restart, a lock wait, the fail-fast after a failed write) is not
answered 503 and lost: its id is kept in memory (at most ``HELD_MAX``) and handled again, as
if it came again, by :meth:`VendorCallback.flush` on the daemon's queue tick once the state
can be written (a new id is then verified as any other). Past the bound the callback is
answered 503 as before, logged with its id and counted (``lost``).

This layer does not poll: the daemon wires ``poll_now`` and ``verify`` (arrows point down).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from notifier import kinds
from notifier import log as logs
from notifier.intake.adding import add_watches
from notifier.intake.http_api import BadRequest, IntakeApi, UnsupportedMediaType
from notifier.kinds import Kind
from notifier.models import DEFAULT_ACCOUNT, WatchState
from notifier.store import DB_ERRORS
from notifier.watchspec import ANY_ACCOUNT, AccountRule, account_check, id_problem

log = logs.get_logger(component="intake")

#: The ``source`` of the watches callbacks make (``watch list``, ``GET /v1/watches/{id}``).
SOURCE = "callback"
#: Callbacks kept in memory while the state cannot take them, at most (about 1,000 reads
#: when they are handled again: well under a second of the loop).
HELD_MAX = 1000
#: Any characters after the prefix: a token may hold "/".
PATH = "/v1/chanjing/callback/{token:.+}"
#: Asked to poll an active watch (job id, kind, account) soon; returns what it did (a
#: metrics label).
PollNow = Callable[[str, str, str], str]
#: Called with each callback's result (metrics).
CallbackObserver = Callable[[str], None]
#: Makes the watch of a verified id; False when it is watched and finished already. When
#: the state cannot be written it raises the store's error, after keeping the id (held).
Admit = Callable[[str], bool]
#: Asked to check an id (its kind, account) not watched yet, with the hook that makes its
#: watch once the vendor knows it; returns what it did (a metrics label).
Verify = Callable[[str, str, str, Admit], str]
#: What a callback is about: (job id, kind, account).
Key = tuple[str, str, str]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def callback_job_id(body: Mapping[str, Any], kind: Kind = kinds.LIP_SYNC) -> str:
    """The job id of a callback body: the detail envelope's ``data.id``, or the bare
    detail's ``id`` (either also under the kind's own id name, e.g. AI creation's
    ``unique_id``). Nothing else in the body is read."""
    names = dict.fromkeys(("id", kind.poll.id_param))
    data = body.get("data")
    found: object = None
    where = ""
    for scope, prefix in ((data, "data."), (body, "")):
        if found is None and isinstance(scope, Mapping):
            key = next((n for n in names if scope.get(n) is not None), None)
            if key is not None:
                found, where = scope[key], prefix + key
    if found is None:
        raise BadRequest(
            'no job id: expected the detail envelope {"code", "msg", "data": {"id": ...}} '
            '(or the bare detail {"id": ...})'
        )
    problem = id_problem(found)
    if problem:
        raise BadRequest(f"{where}: {problem}")
    return str(found)


class VendorCallback:
    """The route's settings (they follow reloads) and its handler."""

    def __init__(
        self,
        api: IntakeApi,
        poll_now: PollNow | None = None,
        observer: CallbackObserver | None = None,
        verify: Verify | None = None,
    ) -> None:
        self.api = api
        self.poll_now = poll_now
        self.observer = observer
        self.verify = verify
        self._token: bytes | None = None
        #: Ids of callbacks the state could not take, oldest first: handled again by flush.
        self.held: dict[Key, None] = {}
        self._lost: Key | None = None
        #: The configured accounts a route may name, and the one of a route that names none.
        self.accounts: AccountRule = ANY_ACCOUNT
        self.labels: dict[str, str] = {}
        self.endpoints: list[str] | None = None
        # Every method: a wrong token is a 404 whatever the method, as for a path that
        # does not exist (a 405 would say it does).
        api.add_route("*", PATH, self.handle, "chanjing_callback", public=True, secret_path=True)

    def configure(
        self,
        token: str | None,
        labels: Mapping[str, str],
        endpoints: Sequence[str] | None,
        accounts: AccountRule = ANY_ACCOUNT,
    ) -> None:
        """``intake.callback_token`` (None: every callback gets 404), labels, endpoints, the
        configured accounts."""
        self.accounts = accounts
        self._token = _digest(token) if token else None
        self.labels = dict(labels)
        self.endpoints = list(endpoints) if endpoints is not None else None

    def _matches(self, given: str) -> bool:
        known = self._token
        # Compared as digests of equal length, also when no token is configured.
        return hmac.compare_digest(_digest(given), known or b"") and known is not None

    def _observe(self, result: str) -> None:
        if self.observer is not None:
            self.observer(result)

    def _route_of(self, given: str) -> tuple[str, str | None] | None:
        """(kind, account named or None) the route names (lip-sync and no account when it
        names none), or None when the token is not ours. Every reading is compared, so the
        time taken says nothing."""
        head, _, tail = given.rpartition("/")
        root, _, account = head.rpartition("/")
        whole = self._matches(given)
        with_kind = self._matches(head) and tail in kinds.KINDS
        with_account = self._matches(root) and tail in kinds.KINDS and bool(account)
        if whole:
            return kinds.DEFAULT_KIND, None
        if with_kind:
            return tail, None
        return (tail, account) if with_account else None

    def _account(self, named: str | None) -> str:
        """The account a route names, or the default one; :class:`BadRequest` naming the
        problem and the route to use."""
        account, problem = account_check(named, self.accounts)
        if problem is not None:
            where = "the account in the path" if named is not None else "the path"
            raise BadRequest(
                f"{where}: {problem}; the callback URL of another account's job is "
                "/v1/chanjing/callback/{token}/{account}/{kind}"
            )
        assert account is not None
        return account

    async def handle(self, request: web.Request) -> web.Response:
        route = self._route_of(request.match_info["token"])
        if route is None:
            self._observe("wrong_token")
            log.info("vendor callback", result="wrong_token")
            raise web.HTTPNotFound()  # the answer of any unknown path
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        kind, named = route
        try:
            account = self._account(named)
            job_id = callback_job_id(await self.api._json_body(request), kinds.get(kind))
        except (BadRequest, UnsupportedMediaType) as exc:
            self._observe("bad_body")
            log.info("vendor callback", result="bad_body", problem=str(exc))
            raise
        new: bool | None
        key = (job_id, kind, account)
        try:
            result, new = self._act(key)
        except DB_ERRORS as exc:
            if not self._hold(key, exc):
                raise  # the middleware's 503: the truth, though the vendor will not retry
            result, new = "held", None
        self._observe(result)
        log.info(
            "vendor callback", job_id=job_id, kind=kind, account=account, result=result, new=new
        )
        return web.json_response({"accepted": True}, status=202)

    def _hold(self, key: Key, exc: BaseException) -> bool:
        """Keep ``key`` to handle it again once the state can be written; False when the
        memory is full (it is not kept: logged with its id and counted as ``lost``). Once
        per failure: admit and the handler may both be told of one."""
        job_id = key[0]
        if key in self.held:
            return True
        if len(self.held) >= HELD_MAX:
            if self._lost != key:
                self._lost = key
                self._observe("lost")
                log.error(
                    "vendor callback lost: the state cannot be written and too many are held",
                    job_id=job_id,
                    held=len(self.held),
                    error=str(exc),
                )
            return False
        self._lost = None
        self.held[key] = None
        log.warning(
            "vendor callback kept in memory: the state cannot be written; handled when it can",
            job_id=job_id,
            held=len(self.held),
            error=str(exc),
        )
        return True

    def flush(self) -> int:
        """Handle the held callbacks again, oldest first, as if they came now; stops at the
        first that the state still cannot take. How many are still held. Called on the
        daemon's queue tick (which runs only while the state can be written)."""
        for key in list(self.held):
            try:
                result, new = self._act(key)
            except DB_ERRORS:
                return len(self.held)
            self.held.pop(key, None)
            self._observe(result)
            job_id, kind, account = key
            log.info(
                "vendor callback",
                job_id=job_id,
                kind=kind,
                account=account,
                result=result,
                new=new,
                held=True,
            )
        return 0

    def admit(
        self, job_id: str, kind: str = kinds.DEFAULT_KIND, account: str = DEFAULT_ACCOUNT
    ) -> bool:
        """Watch ``job_id`` of ``account`` (the vendor knows it) with the callback's labels
        and endpoints, as they are now. False when it is watched and finished already. When
        the state cannot take it, the id is held (handled again, and verified again, by
        :meth:`flush`) and the store's error raised."""
        try:
            return self._admit(job_id, kind, account)
        except DB_ERRORS as exc:
            self._hold((job_id, kind, account), exc)
            raise

    def _admit(self, job_id: str, kind: str, account: str) -> bool:
        store = self.api.store
        known = store.watch_summary(job_id, kind=kind, account=account)
        if known is not None:
            return bool(known["state"] == WatchState.ACTIVE.value)
        add_watches(
            store,
            [job_id],
            self.labels,
            self.endpoints,
            self.api.endpoint_names,
            source=SOURCE,
            kind=kind,
            account=account,
        )
        return True

    def _act(self, key: Key) -> tuple[str, bool]:
        """Ask for a poll of a watched job, or for a check of a new one before it becomes a
        watch. No await in here: callbacks for one id that arrive together are handled one
        after the other, and make one poll."""
        job_id, kind, account = key
        store = self.api.store
        known = store.watch_summary(job_id, kind=kind, account=account)

        def admit(job_id: str) -> bool:
            return self.admit(job_id, kind, account)

        new = known is None
        if known is not None and known["state"] != WatchState.ACTIVE.value:
            return "finished", False  # one event per job: a second callback changes nothing
        if new and self.verify is not None:
            try:
                return self.verify(job_id, kind, account, admit), new
            except DB_ERRORS:
                raise  # held by the caller (or by admit already)
            except Exception:  # not lost: watched unverified, polled in its turn
                log.exception("vendor callback: cannot start the check", job_id=job_id)
                if admit(job_id):
                    store.make_due(job_id, kind=kind, account=account)
                return "error", new
        if new:
            admit(job_id)
        if self.poll_now is None:
            return (
                "due" if store.make_due(job_id, kind=kind, account=account) else "finished"
            ), new
        try:
            return self.poll_now(job_id, kind, account), new
        except DB_ERRORS:
            raise  # held by the caller: handled again when the state can be written
        except Exception:  # the watch exists: polling reaches it in its turn anyway
            log.exception("vendor callback: cannot start the poll", job_id=job_id)
            return "error", new
