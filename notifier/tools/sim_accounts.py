"""The simulator's vendor accounts: each one's app id and secret, its own QPS budget, its own
one-live-token store and its own jobs, as the vendor keeps them per app.

An agency runs one Chanjing account per customer; the daemon that serves several must be
tested against a vendor that keeps them apart. A call belongs to the account whose token it
presents (a token call: the account whose ``app_id`` it names); one account's arrivals never
count toward another's budget, and one's jobs are "not found" with another's token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from notifier.tools.sim_jobs import SimInputError, SimJob
from notifier.tools.sim_kinds import SIM_KINDS
from notifier.tools.sim_wire import QpsCounter, TokenStore

#: Tokens remembered per account after they stop being valid, so that a call with a revoked
#: or expired token still counts toward (and is answered for) the account it belonged to.
OLD_TOKENS_KEPT = 256


@dataclass(frozen=True)
class SimAccount:
    """One vendor account the simulator accepts; ``name`` defaults to the app id."""

    app_id: str
    secret_key: str
    #: Arrivals allowed per calendar second of the simulator clock; <= 0 means unlimited.
    qps: int = 10
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.app_id


class AccountState:
    """One account's token, arrival counter, answer codes and jobs (by kind, then id)."""

    def __init__(self, account: SimAccount, budget: Callable[[], int] | None = None) -> None:
        self.account = account
        #: Read on every arrival: the first account's follows ``SimConfig.qps`` at runtime.
        self._budget = budget
        self.tokens = TokenStore()
        self.qps = QpsCounter()
        self.codes: dict[int, int] = {}
        self.by_path: dict[str, int] = {}
        self.kind_jobs: dict[str, dict[str, SimJob]] = {name: {} for name in SIM_KINDS}

    @property
    def app_id(self) -> str:
        return self.account.app_id

    def all_jobs(self) -> list[SimJob]:
        return [job for jobs in self.kind_jobs.values() for job in jobs.values()]

    def count(self, path: str, now: float) -> int:
        """Record one arrival on ``path``; its 1-based index in its second for this account."""
        self.by_path[path] = self.by_path.get(path, 0) + 1
        return self.qps.arrive(now)

    def budget(self) -> int:
        """Arrivals allowed per second of the simulator clock (<= 0: unlimited)."""
        return self._budget() if self._budget is not None else self.account.qps

    def over_budget(self, index: int) -> bool:
        qps = self.budget()
        return 0 < qps < index

    def reset(self) -> None:
        self.qps.reset()
        self.codes.clear()
        self.by_path.clear()
        self.tokens.issued = 0

    def stats(self) -> dict[str, Any]:
        """This account's counters (``stats()["accounts"][app_id]``)."""
        return {
            "name": self.account.label,
            "qps": self.budget(),
            "calls": self.qps.total,
            "per_second": {str(s): n for s, n in sorted(self.qps.per_second.items())},
            "max_per_second": self.qps.max_per_second,
            "tokens_issued": self.tokens.issued,
            "by_path": dict(sorted(self.by_path.items())),
            "codes": {str(c): n for c, n in sorted(self.codes.items())},
            "jobs": len(self.all_jobs()),
        }


class Accounts:
    """Every account, the first being the default (the one ``SimConfig.app_id`` names), and
    which account each token ever issued belongs to."""

    def __init__(self, states: list[AccountState]) -> None:
        seen: set[str] = set()
        for state in states:
            acc = state.account
            if not acc.app_id or not acc.secret_key:
                raise SimInputError("every account needs a non-empty app_id and secret_key")
            for key in {acc.app_id, acc.label}:
                if key in seen:
                    raise SimInputError(f"account {key!r} is given twice (app ids and names)")
                seen.add(key)
        self.states = states
        self.default = states[0]
        self._owners: dict[str, AccountState] = {}

    def find(self, account: str | None) -> AccountState:
        """The account named by app id or name (None: the default one)."""
        if account is None:
            return self.default
        if not isinstance(account, str):
            raise SimInputError(f"account must be an app id or name, got {account!r}")
        for state in self.states:
            if account in (state.app_id, state.account.label):
                return state
        known = ", ".join(state.app_id for state in self.states)
        raise SimInputError(f"unknown account {account!r} (the simulator serves: {known})")

    def by_app_id(self, app_id: Any) -> AccountState | None:
        for state in self.states:
            if state.app_id == app_id:
                return state
        return None

    def issued(self, state: AccountState, token: str) -> None:
        """Remember that ``token`` is ``state``'s, forgetting the oldest beyond the bound."""
        self._owners[token] = state
        if len(self._owners) > OLD_TOKENS_KEPT * len(self.states):
            del self._owners[next(iter(self._owners))]

    def owner(self, token: str | None) -> AccountState | None:
        """The account a token was issued to (valid or not), None for one never issued."""
        return self._owners.get(token) if token else None
