"""One watch-spec parser: what every intake path checks before a job id becomes a watch.

The watch file, the queue, ``watch add``, the HTTP API, the vendor callback and discovery
all build their :class:`~notifier.models.WatchSpec` here, so a job id, a label or an
endpoint name is judged the same way whichever door it came through, and each problem has
one wording. Each path reports the problems in its own frame (a watch file's
``file: [3].labels: …``, a queue row's ``rejected`` reason, the API's 400, the CLI's exit 2);
the text after the frame is this module's. Pure: no I/O, no state.

What a path does before calling in (reading YAML or JSON, a mapping's unknown keys, the
watch file's ``endpoints: ops`` shorthand) stays with the path: it is about its format, not
about a watch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from notifier.config import DEFAULT_ACCOUNT, Config, dotted, kind, show
from notifier.config.accounts import account_name, unknown_account
from notifier.kinds import DEFAULT_KIND, kind_problem
from notifier.models import (
    WatchSpec,
    job_id_problem,
    label_map,
    labels_problem,
    unknown_endpoint,
)

__all__ = [
    "ANY_ACCOUNT",
    "AccountRule",
    "Loc",
    "Parsed",
    "Problem",
    "WatchProblems",
    "account_check",
    "describe",
    "endpoint_problem",
    "endpoints_type_problem",
    "id_problem",
    "kind_check",
    "labels_check",
    "parse_endpoints",
    "parse_watch",
    "parse_watches",
    "watch_specs",
]

#: Where in the input a problem is: ``("labels",)``, ``("endpoints", 1)``, ``("ids", 0)``.
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a watch request: where, and the parser's words for it."""

    loc: Loc
    msg: str

    def __str__(self) -> str:
        return f"{dotted(self.loc)}: {self.msg}" if self.loc else self.msg

    def at(self, *prefix: str | int) -> Problem:
        """The same problem seen from further out (a watch file item's index)."""
        return Problem((*prefix, *self.loc), self.msg)


class WatchProblems(ValueError):
    """Input a caller promised was checked was not (a bug, not a user's mistake)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(describe(problems))
        self.problems = list(problems)


def describe(problems: Sequence[Problem]) -> str:
    """Problems as one line (a queue row's ``rejected``, a CLI message)."""
    return "; ".join(map(str, problems))


def id_problem(job_id: object) -> str | None:
    """Why ``job_id`` is not a job id, or None. A number gets a hint: YAML and JSON writers
    both turn an unquoted all-digit id into one."""
    if isinstance(job_id, int | float) and not isinstance(job_id, bool):
        return (
            f"job id must be a string, got {kind(job_id)} {show(job_id)}; "
            "quote ids that look like numbers"
        )
    if not isinstance(job_id, str):
        return f"job id must be a string, got {kind(job_id)}"
    return job_id_problem(job_id)


def endpoints_type_problem(raw: object) -> str | None:
    """Why ``raw`` is not a list of endpoint names as a whole, or None."""
    if not isinstance(raw, list):
        return f"must be a list of endpoint names, got {kind(raw)}"
    return None


def endpoint_problem(name: object, configured: Collection[str] | None) -> str | None:
    """Why ``name`` cannot be one of a watch's endpoints (``configured`` given: checked
    against them), or None."""
    if not isinstance(name, str):
        return f"must be an endpoint name, got {kind(name)}"
    if configured is not None and name not in configured:
        return unknown_endpoint(name, configured)
    return None


def parse_endpoints(
    raw: object, configured: Collection[str] | None, problems: list[Problem]
) -> tuple[str, ...] | None:
    """``raw`` as endpoint names (duplicates dropped), or None after appending its problems
    (at ``()`` for the whole, ``(i,)`` for the i-th name)."""
    problem = endpoints_type_problem(raw)
    if problem is not None:
        problems.append(Problem((), problem))
        return None
    assert isinstance(raw, list)
    start = len(problems)
    for i, name in enumerate(raw):
        problem = endpoint_problem(name, configured)
        if problem is not None:
            problems.append(Problem((i,), problem))
    return tuple(dict.fromkeys(raw)) if len(problems) == start else None


def labels_check(raw: object) -> str | None:
    """Why ``raw`` cannot be a watch's labels, or None (the limits: :mod:`notifier.models`)."""
    if not isinstance(raw, dict):
        return f"labels must be a mapping of key: value, got {kind(raw)}"
    return labels_problem(raw)


def _labels(raw: object, problems: list[Problem]) -> dict[str, str]:
    problem = labels_check(raw)
    if problem is not None:
        problems.append(Problem(("labels",), problem))
        return {}
    assert isinstance(raw, dict)
    return label_map(raw)


def kind_check(raw: object) -> str | None:
    """Why ``raw`` is not a kind's name, or None: the kind table's one wording
    (:func:`notifier.kinds.kind_problem`). None is not given here: absent means lip-sync."""
    return kind_problem(raw)


@dataclass(frozen=True)
class AccountRule:
    """The accounts a watch may name, and the one it gets when it names none (issue 22):
    the only account when there is one, else the one marked default, else none (a watch
    must name its account). ``names`` None: not checked against a config (input the daemon
    made itself), any well-formed name goes; none named is ``default``."""

    names: tuple[str, ...] | None = None
    default: str | None = DEFAULT_ACCOUNT

    @classmethod
    def of(cls, names: Collection[str], default: str | None) -> AccountRule:
        return cls(tuple(names), default)

    @classmethod
    def configured(cls, config: Config) -> AccountRule:
        """The rule of ``config``'s accounts."""
        return cls.of([a.name for a in config.vendor_accounts()], config.default_account())

    def limited(self, names: Collection[str] | None) -> AccountRule:
        """The rule as a caller allowed only ``names`` sees it (an intake token limited to
        some accounts): the others do not exist for it, and the default is its only account
        or the configured default when it is one of them."""
        if names is None:
            return self
        allowed = tuple(n for n in (self.names or names) if n in names)
        default = (
            allowed[0] if len(allowed) == 1 else (self.default if self.default in allowed else None)
        )
        return AccountRule(allowed, default)

    def missing(self) -> str:
        """The one wording for a watch that names no account where it must."""
        names = ", ".join(self.names or ())
        return f"name the account (several configured and none marked default: {names})"


def account_check(raw: object, rule: AccountRule) -> tuple[str, None] | tuple[None, str]:
    """``(account, None)`` for what a watch names (None: it names none), or ``(None, why
    not)``: an account name the config has (under ``rule``), in the config's wording for an
    unknown one."""
    if raw is None:
        if rule.default is None:
            return None, rule.missing()
        return rule.default, None
    try:
        name = account_name(raw)
    except ValueError as exc:
        return None, str(exc)
    if rule.names is not None and name not in rule.names:
        return None, unknown_account(name, rule.names)
    return name, None


#: No config to check against: any well-formed account, ``default`` when none is named.
ANY_ACCOUNT = AccountRule()


class Parsed(NamedTuple):
    """What :func:`parse_watches` made of a request: its specs, or (then none) its problems."""

    specs: list[WatchSpec]
    problems: list[Problem]


def parse_watches(
    ids: Sequence[object],
    labels: object = None,
    endpoints: object = None,
    *,
    endpoints_configured: Collection[str] | None,
    ids_at: Loc = ("ids",),
    kind: object = None,
    account: object = None,
    accounts: AccountRule = ANY_ACCOUNT,
) -> Parsed:
    """Watch specs for ``ids`` that share ``labels``, ``endpoints``, ``kind`` and
    ``account`` (None: absent: no labels, every endpoint whose events match, lip-sync, the
    default account of ``accounts``), or every problem found. ``endpoints`` are checked
    against ``endpoints_configured`` unless it is None. Ids repeated are one spec.

    Problems are at ``(*ids_at, i)`` for the i-th id, ``("labels",)``, ``("endpoints", …)``,
    ``("kind",)`` and ``("account",)``."""
    problems: list[Problem] = []
    for i, job_id in enumerate(ids):
        problem = id_problem(job_id)
        if problem is not None:
            problems.append(Problem((*ids_at, i), problem))
    stored = {} if labels is None else _labels(labels, problems)
    names: tuple[str, ...] | None = None
    if endpoints is not None:
        found: list[Problem] = []
        names = parse_endpoints(endpoints, endpoints_configured, found)
        problems += [p.at("endpoints") for p in found]
    chosen = DEFAULT_KIND if kind is None else kind
    problem = kind_check(chosen)
    if problem is not None:
        problems.append(Problem(("kind",), problem))
    named, problem = account_check(account, accounts)
    if problem is not None:
        problems.append(Problem(("account",), problem))
    if problems:
        return Parsed([], problems)
    assert isinstance(chosen, str) and named is not None
    specs = [
        WatchSpec(str(job_id), dict(stored), names, chosen, named) for job_id in dict.fromkeys(ids)
    ]
    return Parsed(specs, [])


def parse_watch(
    job_id: object,
    labels: object = None,
    endpoints: object = None,
    *,
    endpoints_configured: Collection[str] | None,
    kind: object = None,
    account: object = None,
    accounts: AccountRule = ANY_ACCOUNT,
) -> WatchSpec | list[Problem]:
    """One watch spec, or its problems (at ``("id",)``, ``("labels",)``,
    ``("endpoints", …)``, ``("kind",)``, ``("account",)``); see :func:`parse_watches`."""
    specs, problems = parse_watches(
        [job_id],
        labels,
        endpoints,
        endpoints_configured=endpoints_configured,
        ids_at=(),
        kind=kind,
        account=account,
        accounts=accounts,
    )
    if specs:
        return specs[0]
    return [Problem(("id",), p.msg) if p.loc == (0,) else p for p in problems]


def watch_specs(
    ids: Sequence[str],
    labels: object = None,
    endpoints: object = None,
    *,
    kind: str = DEFAULT_KIND,
    account: str = DEFAULT_ACCOUNT,
) -> list[WatchSpec]:
    """Specs for input checked already (ids from a vendor list, labels and endpoints from
    the config, a kind of the table, an account of the config): :class:`WatchProblems` if it
    was not after all."""
    specs, problems = parse_watches(
        ids, labels, endpoints, endpoints_configured=None, kind=kind, account=account
    )
    if problems:
        raise WatchProblems(problems)
    return specs
