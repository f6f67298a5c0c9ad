"""The config model, one pydantic class per section of the YAML file."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeAlias
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from notifier import kinds
from notifier.config.accounts import (
    DEFAULT_ACCOUNT,
    VENDOR_QPS_LIMIT,
    AccountConfig,
    ChanjingConfig,
    account_name,
    account_warnings,
    check_accounts,
    one_vendor_section,
    optional_account,
    reference_problems,
)
from notifier.config.events import DEFAULT_EVENTS, expand
from notifier.config.events import problem as event_problem
from notifier.config.fields import (
    Duration,
    PositiveDuration,
    as_path,
    endpoint_name,
    format_duration,
    http_url,
    int_between,
    is_loopback_host,
    optional_path,
    parse_duration,
    plain_http_host,
    plain_text,
    postgres_url,
    secret_http_url,
    secret_text,
    webhook_secret,
)
from notifier.config.intake_tokens import IntakeToken, intake_token
from notifier.config.problems import KeyedProblems, Loc, duplicate_names, kind, show
from notifier.models import label_map, labels_problem, unknown_endpoint

# --------------------------------------------------------------------------------------------
# Models

_MODEL = ConfigDict(extra="forbid", frozen=True)


def _events(value: object, info: ValidationInfo) -> list[str]:
    """``events`` as written (exact names and patterns, each once): ``check`` and the start-up
    line show them so; :func:`notifier.config.events.expand` makes them types for routing."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of events ({_EVENTS_HELP}), got {kind(value)}")
    if not value:
        raise ValueError(f"must list at least one event ({_EVENTS_HELP})")
    name = info.data.get("name")
    where = f"endpoint {name!r}: " if isinstance(name, str) else ""
    problems: list[tuple[Loc, str]] = []
    entries: list[str] = []
    for i, item in enumerate(value):
        problem = event_problem(item)
        if problem is not None:
            problems.append(((i,), where + problem))
        elif item not in entries:
            entries.append(item)
    if problems:
        raise KeyedProblems(problems)
    return entries


_EVENTS_HELP = "e.g. lip_sync.succeeded, video.*, *.failed, *, vendor.failing"
Events = Annotated[list[str], BeforeValidator(_events)]


#: The shortest ``state.lease``: the vendor lease's MARGIN (2 s, notifier.polling.lease) plus a
#: second in which the holder may call the vendor between renewals.
MIN_LEASE = 3.0


def _lease_duration(value: object) -> float:
    seconds = parse_duration(value)  # type: ignore[arg-type]  # it rejects other types
    if seconds < MIN_LEASE:
        raise ValueError(
            f"must be at least {format_duration(MIN_LEASE)} (the 2s safety margin before it "
            f"expires plus time to call the vendor), got {show(value)}"
        )
    return seconds


def _node_name(value: object) -> str | None:
    if value is None:
        return None
    name = plain_text(value)
    if len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError("must be at most 200 printable characters")
    return name


class StateConfig(BaseModel):
    """Where the state lives: a SQLite file (``path``) or a PostgreSQL database (``url``)."""

    model_config = _MODEL

    path: Annotated[Path, BeforeValidator(as_path)] = Path("/var/lib/chanjing-notifier/state.db")
    #: ``postgresql://USER:PASS@HOST:PORT/DB``: the state in PostgreSQL, shared by several nodes.
    url: Annotated[str | None, BeforeValidator(postgres_url)] = None
    #: Delivered and dead history, finished watches and rejected queue rows older than this
    #: are forgotten; 0 keeps everything.
    retention: Duration = 30 * 86400.0
    #: How long the vendor lease lasts unless renewed: a node that dies or freezes is replaced
    #: by another one within this plus a second (see ``notifier.polling.lease``).
    lease: Annotated[float, BeforeValidator(_lease_duration)] = 10.0
    #: This daemon's name in the lease, claims, logs and metrics; None: ``hostname:pid`` at
    #: start. Must differ between nodes sharing a database (``${HOSTNAME}`` in a shared config).
    node: Annotated[str | None, BeforeValidator(_node_name)] = None

    @model_validator(mode="after")
    def _one_backend(self) -> StateConfig:
        if self.url is not None and "path" in self.model_fields_set:
            raise KeyedProblems(
                [((), "give state.path (SQLite) or state.url (PostgreSQL), not both")]
            )
        return self


def _url_password(url: str) -> list[str]:
    password = urlsplit(url).password
    return [password] if password else []


def _since(value: object) -> float | str:
    """``start`` or an ISO-8601 time (one without an offset is UTC) as epoch seconds."""
    if value == "start":
        return "start"
    when: object = value
    if isinstance(value, date) and not isinstance(value, datetime):  # YAML: 2026-11-28
        when = datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value.strip())
    if not isinstance(when, datetime):
        raise ValueError(
            f"must be start or an ISO-8601 time like 2026-11-28T09:00:00Z, got {show(value)}"
        )
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _labels(value: object) -> object:
    if value is None:
        return {}
    problem = labels_problem(value)
    if problem:
        raise ValueError(problem)
    assert isinstance(value, dict)
    return label_map(value)


def _discover_kinds(value: object) -> list[str]:
    """A kind, a list of kinds, or ``*`` (every kind discovery can cover), in table order."""
    names = value if isinstance(value, list) else [value]
    if "*" in names:
        return list(kinds.DISCOVERABLE)
    if not names:
        raise ValueError(f"name at least one kind (discoverable: {', '.join(kinds.DISCOVERABLE)})")
    for name in names:
        if problem := kinds.discovery_problem(name):
            raise ValueError(problem)
    return [k for k in kinds.DISCOVERABLE if k in names]


class DiscoverConfig(BaseModel):
    """``watch.discover``: list sweeps make watches of new jobs by themselves."""

    model_config = _MODEL

    #: Epoch seconds, or "start" (when the state was first created).
    since: Annotated[float | Literal["start"], BeforeValidator(_since)] = "start"
    labels: Annotated[dict[str, str], BeforeValidator(_labels)] = Field(default_factory=dict)
    #: None: every endpoint subscribed to the event (as a watch added without endpoints).
    endpoints: list[Annotated[str, BeforeValidator(endpoint_name)]] | None = None
    #: The kinds whose lists discovery reads; lip-sync alone unless named.
    kinds: Annotated[list[str], BeforeValidator(_discover_kinds)] = Field(
        default_factory=lambda: [kinds.DEFAULT_KIND]
    )


class WatchConfig(BaseModel):
    """The optional watch file, and discovery."""

    model_config = _MODEL

    file: Annotated[Path | None, BeforeValidator(optional_path)] = None
    #: Off when absent.
    discover: DiscoverConfig | None = None

    @field_validator("discover", mode="before")
    @classmethod
    def _empty_discover(cls, value: object) -> object:
        return {} if value is None else value


class PollingConfig(BaseModel):
    """How often one job is polled, and for how long."""

    model_config = _MODEL

    min_interval: PositiveDuration = 5.0
    max_interval: PositiveDuration = 120.0
    give_up_after: PositiveDuration = 86400.0
    #: ``adaptive`` predicts each job's completion from its progress; ``round_robin`` polls
    #: every job every ``min_interval`` (the baseline the benchmark compares against).
    policy: Literal["adaptive", "round_robin"] = "adaptive"
    #: Also observe recent jobs through the vendor's list call (up to 100 jobs per call).
    list_sweep: StrictBool = True

    @model_validator(mode="after")
    def _check_order(self) -> PollingConfig:
        if self.min_interval > self.max_interval:
            raise KeyedProblems(
                [
                    (
                        ("min_interval",),
                        f"must not be greater than polling.max_interval "
                        f"({format_duration(self.min_interval)} > "
                        f"{format_duration(self.max_interval)})",
                    )
                ]
            )
        return self


DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (
    5.0,
    30.0,
    120.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
)


def _retry_schedule(value: object) -> list[float]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of durations (use [] for no retries), got {kind(value)}")
    problems: list[tuple[Loc, str]] = []
    out: list[float] = []
    for i, item in enumerate(value):
        try:
            out.append(parse_duration(item))
        except ValueError as exc:
            problems.append(((i,), str(exc)))
    if problems:
        raise KeyedProblems(problems)
    return out


class DeliveryConfig(BaseModel):
    """How callbacks are sent."""

    model_config = _MODEL

    timeout: PositiveDuration = 15.0
    #: Delays before each retry; when they run out the delivery is dead (replayable).
    retry_schedule: Annotated[list[float], BeforeValidator(_retry_schedule)] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE)
    )
    #: Maximum deliveries in flight per endpoint.
    concurrency: Annotated[int, BeforeValidator(int_between(1, 256))] = 8


class AlertsConfig(BaseModel):
    """When the daemon tells subscribed endpoints about itself (operational events)."""

    model_config = _MODEL

    #: An endpoint is failing after this many failed attempts in a row (0: never by count).
    endpoint_failing_after: Annotated[int, BeforeValidator(int_between(0, 1_000_000))] = 5
    #: ... or when its attempts have failed for this long since its last success (0: never).
    endpoint_failing_for: Duration = 600.0
    #: The vendor is failing when its calls have failed for this long since the last
    #: success (0: at the first failure); rejected credentials count at once.
    vendor_failing_for: Duration = 120.0


class _EndpointBase(BaseModel):
    model_config = _MODEL

    name: Annotated[str, BeforeValidator(endpoint_name)]
    #: As written: exact event types and patterns (``video.*``, ``*.failed``, ``*``).
    events: Events = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    #: Only these accounts' events (None: every account's).
    accounts: list[Annotated[str, BeforeValidator(account_name)]] | None = None

    def event_types(self) -> tuple[str, ...]:
        """The concrete event types ``events`` subscribes to."""
        return expand(self.events)

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to ``event_type``."""
        return event_type in self.event_types()

    def target_url(self) -> str:
        """The URL to POST to (a secret for Slack endpoints)."""
        raise NotImplementedError

    def display_target(self) -> str:
        """``scheme://host[:port]`` of the target: safe for logs and CLI output."""
        parts = urlsplit(self.target_url())
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class WebhookEndpoint(_EndpointBase):
    """A Standard Webhooks receiver."""

    type: Literal["webhook"]
    url: Annotated[str, BeforeValidator(http_url)]
    #: Signing secrets (``whsec_…``); the callback carries one signature per secret.
    secret: list[Annotated[SecretStr, BeforeValidator(webhook_secret)]]

    @field_validator("secret", mode="before")
    @classmethod
    def _secret_list(cls, value: object) -> object:
        if isinstance(value, str | SecretStr):
            return [value]
        if not isinstance(value, list | tuple):
            raise ValueError(f"must be a 'whsec_...' secret or a list of them, got {kind(value)}")
        if not value:
            raise ValueError("must have at least one secret")
        return value

    def target_url(self) -> str:
        return self.url

    def secret_values(self) -> list[str]:
        return [s.get_secret_value() for s in self.secret]


class SlackEndpoint(_EndpointBase):
    """A Slack (or Slack-compatible) incoming webhook; the URL is a secret."""

    type: Literal["slack"]
    url: Annotated[SecretStr, BeforeValidator(secret_http_url)]

    def target_url(self) -> str:
        return self.url.get_secret_value()


Endpoint: TypeAlias = WebhookEndpoint | SlackEndpoint
ENDPOINT_TYPES: dict[str, type[WebhookEndpoint] | type[SlackEndpoint]] = {
    "webhook": WebhookEndpoint,
    "slack": SlackEndpoint,
}


class LogConfig(BaseModel):
    """Logging."""

    model_config = _MODEL

    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _check_level(cls, value: object) -> str:
        allowed = ("debug", "info", "warning", "error")
        if isinstance(value, str):
            level = value.strip().lower()
            level = {"warn": "warning"}.get(level, level)
            if level in allowed:
                return level
        raise ValueError(f"unknown log level {show(value)} (allowed: {', '.join(allowed)})")


_LISTEN_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")


class _Listener(BaseModel):
    """A section with an optional ``listen: host:port``."""

    model_config = _MODEL

    #: ``host:port`` (``[::1]:9464`` for IPv6); None disables the listener.
    listen: str | None = None

    @field_validator("listen", mode="before")
    @classmethod
    def _check_listen(cls, value: object) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            match = _LISTEN_RE.fullmatch(value.strip())
            if match and 1 <= int(match.group(2)) <= 65535:
                return value.strip()
        raise ValueError(
            f"must be host:port (port 1-65535), e.g. 127.0.0.1:9464, got {show(value)}"
        )

    def address(self) -> tuple[str, int] | None:
        """``(host, port)`` to bind, brackets removed from IPv6 hosts; None when disabled."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class MetricsConfig(_Listener):
    """The optional Prometheus listener."""


#: Bearer tokens: RFC 6750 ``token68`` characters, long enough to guess never (and to be
#: masked in logs: the redactor ignores short strings).
def _optional_intake_token(value: object) -> str | None:
    return None if value is None else intake_token(value)


def _public_url(value: object) -> str | None:
    if value is None:
        return None
    url = http_url(value).rstrip("/")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError("must not have a query string or fragment")
    return url


def _client_name(value: object) -> str:
    try:
        name = endpoint_name(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("endpoint name", "client name")) from None
    if name == "account":
        raise ValueError("'account' is the name of the account's own credentials; pick another")
    return name


class GatewayClient(BaseModel):
    """An application's own credentials for the gateway (the vendor secret stays here)."""

    model_config = _MODEL

    name: Annotated[str, BeforeValidator(_client_name)]
    app_id: Annotated[str, BeforeValidator(plain_text)]
    secret_key: Annotated[SecretStr, BeforeValidator(secret_text)]
    #: The account its calls are made as (None: the default account).
    account: Annotated[str | None, BeforeValidator(optional_account)] = None


def _share(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"must be a number from 0 to 1, got {show(value)}")
    return float(value)


class GatewayConfig(_Listener):
    """The vendor-compatible gateway for the user's own applications; off without ``listen``."""

    #: Beside the account's own app_id/secret_key, which is always accepted.
    clients: list[GatewayClient] = Field(default_factory=list)
    #: This node's gateway as other nodes reach it (a standby relays to the lease holder's);
    #: None: ``http://`` + ``listen``.
    advertise: Annotated[str | None, BeforeValidator(_public_url)] = None
    #: Share of ``chanjing.qps`` that applications' calls may take ahead of the daemon's own
    #: polls and sweeps; past it they wait in line with the polls.
    share: Annotated[float, BeforeValidator(_share)] = 0.5
    #: A call that would wait longer than this for the budget gets the vendor's 40001.
    max_wait: PositiveDuration = 10.0
    #: Labels and endpoints (None: every subscribed one) of watches a create makes, unless
    #: its request names its own (``x-notifier-label`` / ``x-notifier-endpoint`` headers).
    labels: Annotated[dict[str, str], BeforeValidator(_labels)] = Field(default_factory=dict)
    endpoints: list[Annotated[str, BeforeValidator(endpoint_name)]] | None = None

    @field_validator("clients")
    @classmethod
    def _unique_clients(cls, clients: list[GatewayClient]) -> list[GatewayClient]:
        problems: list[tuple[Loc, str]] = []
        names: set[str] = set()
        app_ids: set[str] = set()
        for i, client in enumerate(clients):
            if client.name in names:
                problems.append(((i, "name"), f"duplicate client name {client.name!r}"))
            if client.app_id in app_ids:
                problems.append(((i, "app_id"), "duplicate app_id"))
            names.add(client.name)
            app_ids.add(client.app_id)
        if problems:
            raise KeyedProblems(problems)
        return clients

    def advertised(self) -> str | None:
        """Where other nodes reach this gateway; None when it is off."""
        if self.advertise is not None:
            return self.advertise
        address = self.address()
        if address is None:
            return None
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{address[1]}"


class IntakeConfig(_Listener):
    """The optional HTTP intake API (``POST /v1/watches``…); off without ``listen``."""

    #: Any of them is accepted (several: rotation without downtime); one with ``accounts``
    #: only for those accounts' watches and events.
    tokens: list[IntakeToken] = Field(default_factory=list)
    #: A client must send its request headers, and then its body, within this long.
    client_timeout: PositiveDuration = 10.0

    @field_validator("tokens", mode="before")
    @classmethod
    def _token_list(cls, value: object) -> object:
        if value is None:
            return []
        if isinstance(value, str | SecretStr):
            return [value]
        if not isinstance(value, list):
            raise ValueError(f"must be a list of tokens, got {kind(value)}")
        return value

    #: Enables ``POST /v1/chanjing/callback/{callback_token}`` (the vendor's callback);
    #: checked and kept secret like ``tokens``.
    callback_token: Annotated[SecretStr | None, BeforeValidator(_optional_intake_token)] = None
    #: Labels and endpoints (None: every subscribed one) of watches a callback creates.
    labels: Annotated[dict[str, str], BeforeValidator(_labels)] = Field(default_factory=dict)
    endpoints: list[Annotated[str, BeforeValidator(endpoint_name)]] | None = None
    #: Where the vendor reaches this listener (``https://notifier.example.com``): with
    #: ``callback_token``, creates through the gateway that name no ``callback`` get ours.
    public_url: Annotated[str | None, BeforeValidator(_public_url)] = None

    def callback_url(self) -> str | None:
        """The vendor callback route as the vendor reaches it, or None (not configured)."""
        secret = self.callback_secret()
        if self.public_url is None or secret is None:
            return None
        return f"{self.public_url}/v1/chanjing/callback/{secret}"

    def token_values(self) -> list[str]:
        return [t.token.get_secret_value() for t in self.tokens]

    def token_grants(self) -> list[tuple[str, tuple[str, ...] | None]]:
        """Each token and the accounts it is limited to (None: every account)."""
        return [
            (t.token.get_secret_value(), None if t.accounts is None else tuple(t.accounts))
            for t in self.tokens
        ]

    def callback_secret(self) -> str | None:
        token = self.callback_token
        return token.get_secret_value() if token is not None else None


_SECTION_DEFAULTS = (
    "state",
    "watch",
    "polling",
    "delivery",
    "alerts",
    "log",
    "metrics",
    "intake",
    "gateway",
)


class Config(BaseModel):
    """The whole configuration file."""

    model_config = _MODEL

    #: One account (named ``default``), or ``accounts`` for several: one of the two.
    chanjing: ChanjingConfig | None = None
    accounts: list[AccountConfig] | None = None
    state: StateConfig = Field(default_factory=StateConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    endpoints: list[Annotated[Endpoint, Field(discriminator="type")]] = Field(default_factory=list)
    log: LogConfig = Field(default_factory=LogConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    intake: IntakeConfig = Field(default_factory=IntakeConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)

    VENDOR_QPS_LIMIT: ClassVar[int] = VENDOR_QPS_LIMIT

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # "polling:" with nothing under it means "all defaults", not "polling must be a mapping".
        if isinstance(data, dict):
            data = dict(data)
            for key in (*_SECTION_DEFAULTS, "chanjing"):
                if key in data and data[key] is None:
                    data[key] = {}
            if "endpoints" in data and data["endpoints"] is None:
                data["endpoints"] = []
            data = one_vendor_section(data)
        return data

    @field_validator("accounts", mode="after")
    @classmethod
    def _check_accounts(cls, accounts: list[AccountConfig] | None) -> list[AccountConfig] | None:
        if accounts is not None:
            check_accounts(accounts)
        return accounts

    @model_validator(mode="after")
    def _account_references(self) -> Config:
        """Every account a section names is configured; where one is needed and none is
        named, the default account must exist."""
        refs: list[tuple[Loc, str | None]] = [
            (("gateway", "clients", i, "account"), c.account)
            for i, c in enumerate(self.gateway.clients)
        ]
        refs += [
            (("endpoints", i, "accounts", j), name)
            for i, endpoint in enumerate(self.endpoints)
            for j, name in enumerate(endpoint.accounts or [])
        ]
        refs += [
            (("intake", "tokens", i, "accounts", j), name)
            for i, token in enumerate(self.intake.tokens)
            for j, name in enumerate(token.accounts or [])
        ]
        names = [a.name for a in self.vendor_accounts()]
        problems = reference_problems(names, self.default_account(), refs)
        if problems:
            raise KeyedProblems(problems)
        return self

    def vendor_accounts(self) -> list[AccountConfig]:
        """Every account, in the order configured; ``chanjing:`` is the one named default."""
        if self.accounts is not None:
            return list(self.accounts)
        assert self.chanjing is not None  # one of the two, checked before validation
        return [AccountConfig(name=DEFAULT_ACCOUNT, **dict(self.chanjing))]

    def account(self, name: str) -> AccountConfig | None:
        return next((a for a in self.vendor_accounts() if a.name == name), None)

    def default_account(self) -> str | None:
        """The account of a watch that names none: the only one, or the one marked
        default; None when a watch must name its account."""
        accounts = self.vendor_accounts()
        if len(accounts) == 1:
            return accounts[0].name
        return next((a.name for a in accounts if a.default), None)

    @model_validator(mode="after")
    def _default_endpoints(self) -> Config:
        """``watch.discover.endpoints`` and ``intake.endpoints``, like ``watch add
        --endpoint``: only names of configured endpoints."""
        names = self.endpoint_names()
        discover = self.watch.discover
        given: list[tuple[Loc, list[str] | None]] = [
            (("watch", "discover", "endpoints"), discover.endpoints if discover else None),
            (("intake", "endpoints"), self.intake.endpoints),
        ]
        problems: list[tuple[Loc, str]] = [
            ((*where, i), unknown_endpoint(name, names))
            for where, wanted in given
            for i, name in enumerate(wanted or [])
            if name not in names
        ]
        if problems:
            raise KeyedProblems(problems)
        return self

    @field_validator("endpoints", mode="after")
    @classmethod
    def _unique_names(cls, endpoints: list[Endpoint]) -> list[Endpoint]:
        problems = duplicate_names((e.name for e in endpoints), "endpoint", "endpoints")
        if problems:
            raise KeyedProblems(problems)
        return endpoints

    def endpoint(self, name: str) -> Endpoint | None:
        """The endpoint called ``name``, or None."""
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        return None

    def endpoint_names(self) -> list[str]:
        return [endpoint.name for endpoint in self.endpoints]

    def secrets(self) -> list[str]:
        """Every secret string in the configuration (for log redaction), longest first."""
        found = [a.secret_key.get_secret_value() for a in self.vendor_accounts()]
        if self.state.url is not None:
            found.extend(_url_password(self.state.url))
        for endpoint in self.endpoints:
            if isinstance(endpoint, WebhookEndpoint):
                found.extend(endpoint.secret_values())
            else:
                found.append(endpoint.target_url())
        found.extend(self.intake.token_values())
        found.append(self.intake.callback_secret() or "")
        found.extend(c.secret_key.get_secret_value() for c in self.gateway.clients)
        unique = [s for s in dict.fromkeys(found) if s]
        return sorted(unique, key=len, reverse=True)

    def warnings(self) -> list[str]:
        """Things that are allowed but probably not intended; no secrets in them."""
        out: list[str] = []
        out.extend(account_warnings(self.vendor_accounts(), single=self.accounts is None))
        if not self.endpoints:
            out.append("no endpoints configured: events will be recorded but not sent")
        for i, endpoint in enumerate(self.endpoints):
            host = plain_http_host(endpoint.target_url())
            if host is not None:
                out.append(f"endpoints[{i}].url: plain http to non-loopback host {host}; use https")
        intake = self.intake
        if intake.listen is not None and not intake.tokens:
            served = " but the vendor callback" if intake.callback_token is not None else ""
            out.append(f"intake.listen without intake.tokens: every /v1 request{served} gets 401")
        if intake.listen is None and intake.callback_token is not None:
            out.append("intake.callback_token without intake.listen: no callback is received")
        if intake.public_url is not None and intake.callback_token is None:
            out.append("intake.public_url without intake.callback_token: no callback is added")
        gateway = self.gateway
        if gateway.listen is None and gateway.clients:
            out.append("gateway.clients without gateway.listen: the gateway is off")
        address = gateway.address()
        if address is not None and not is_loopback_host(address[0]):
            out.append(
                f"gateway.listen: {gateway.listen} is not loopback; anyone who reaches it with "
                "valid credentials spends the account's budget (keep it on a private network)"
            )
        if self.watch.discover is not None and not self.polling.list_sweep:
            out.append(
                "watch.discover with polling.list_sweep: false: nothing is discovered "
                "(discovery reads the list sweeps)"
            )
        if self.polling.give_up_after < self.polling.min_interval:
            out.append(
                "polling.give_up_after: shorter than polling.min_interval; "
                "jobs will be given up after their first poll"
            )
        return out


SECTIONS: dict[str, type[BaseModel]] = {
    "chanjing": ChanjingConfig,
    "state": StateConfig,
    "watch": WatchConfig,
    "polling": PollingConfig,
    "delivery": DeliveryConfig,
    "alerts": AlertsConfig,
    "log": LogConfig,
    "metrics": MetricsConfig,
    "intake": IntakeConfig,
    "gateway": GatewayConfig,
}
