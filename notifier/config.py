"""The configuration file: YAML, ``${VAR}`` expansion, validation into typed models.

Everything a user can get wrong ends up as a :class:`ConfigError` whose lines read
``<file>: <dotted.key>: <problem>``; no traceback, no pydantic jargon, and no secret values.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Annotated, Any, ClassVar, Literal, NoReturn, TypeAlias
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from standardwebhooks import Webhook

from notifier.models import EVENT_TYPES, FAILED, SUCCEEDED

__all__ = [
    "DEFAULT_RETRY_SCHEDULE",
    "ENDPOINT_TYPES",
    "MAX_DURATION",
    "ChanjingConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "Endpoint",
    "EventType",
    "LogConfig",
    "MetricsConfig",
    "PollingConfig",
    "ProblemsError",
    "SlackEndpoint",
    "StateConfig",
    "WatchConfig",
    "WebhookEndpoint",
    "format_duration",
    "is_loopback_host",
    "load_config",
    "parse_config",
    "parse_duration",
    "read_yaml_file",
]

Loc: TypeAlias = tuple[str | int, ...]

# --------------------------------------------------------------------------------------------
# Errors


class ProblemsError(Exception):
    """An error made of one or more human-readable lines (``problems``)."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: list[str] = list(dict.fromkeys(problems)) or ["invalid"]
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class ConfigError(ProblemsError):
    """The configuration cannot be used; every line is ``<file>: <dotted.key>: <problem>``."""


class _KeyedProblems(ValueError):
    """A validator's complaint about keys *below* the place it validates.

    ``items`` are (relative key path, message); the loader joins them to the validator's location
    so, e.g., a model-level check can blame ``polling.min_interval`` rather than ``polling``.
    """

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{dotted(loc)}: {msg}" if loc else msg for loc, msg in items))


def dotted(loc: Iterable[object]) -> str:
    """Key path for messages: ``("endpoints", 1, "secret")`` → ``endpoints[1].secret``."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = part if isinstance(part, str) else show(part)
            if not _PLAIN_KEY_RE.fullmatch(text):
                text = repr(text)  # empty, spaces, dots, control characters: quote them
            out += ("." if out else "") + text
    return out


_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def kind(value: object) -> str:
    """A YAML-ish name for the type of ``value``, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def show(value: object, limit: int = 60) -> str:
    """A short repr of a (non-secret) value for messages."""
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**limit:
        return "a very large integer"
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return f"a {kind(value)}"


# --------------------------------------------------------------------------------------------
# Durations

_DURATION_HELP = "use a number of seconds or 500ms, 5s, 2m, 1h, 1d"
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_UNIT_SECONDS: dict[str, Fraction] = {
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
    "d": Fraction(86400),
}
_PLAIN_RE = re.compile(rf"{_NUMBER}")
_COMPOUND_RE = re.compile(rf"(?:{_NUMBER}\s*(?:ms|s|m|h|d)\s*)+")
_COMPONENT_RE = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")
#: Longest duration accepted (ten years): keeps timer arithmetic far away from overflow.
MAX_DURATION = 3650 * 86400.0


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``: a number of seconds, or ``500ms``, ``5s``, ``2m``, ``1h``, ``1d``.

    Components may be combined (``1h30m``, ``1m 30s``). Raises ValueError for anything else,
    including negative, non-finite and boolean values.
    """
    shown = show(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration {shown}: {_DURATION_HELP}")
    total: Fraction
    if isinstance(value, int):
        total = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid duration {shown}: must be a finite number")
        total = Fraction(value)
    else:
        text = value.strip()
        if not text:
            raise ValueError(f"invalid duration {shown}: empty; {_DURATION_HELP}")
        if len(text) > 400:
            raise ValueError(f"invalid duration {shown}: too long a text; {_DURATION_HELP}")
        if text.startswith("-") and (
            _PLAIN_RE.fullmatch(text[1:].lstrip()) or _COMPOUND_RE.fullmatch(text[1:].lstrip())
        ):
            raise ValueError(f"invalid duration {shown}: must not be negative")
        if _PLAIN_RE.fullmatch(text):
            total = Fraction(text)
        elif _COMPOUND_RE.fullmatch(text):
            total = sum(
                (Fraction(num) * _UNIT_SECONDS[unit] for num, unit in _COMPONENT_RE.findall(text)),
                Fraction(0),
            )
        else:
            raise ValueError(f"invalid duration {shown}: {_DURATION_HELP}")
    if total < 0:
        raise ValueError(f"invalid duration {shown}: must not be negative")
    if total > MAX_DURATION:
        raise ValueError(f"invalid duration {shown}: too long (at most 3650d)")
    return float(total)


def format_duration(seconds: float) -> str:
    """Compact human form: 0.5 → ``500ms``, 1.5 → ``1.5s``, 90 → ``1m30s``, 3600 → ``1h``.

    For finite non-negative values ``parse_duration(format_duration(x)) == x``; values that are
    not a whole number of milliseconds are written as exact decimal seconds (``0.0005s``).
    """
    if math.isnan(seconds):
        return "nan"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if math.isinf(seconds):
        return "inf"
    millis_f = seconds * 1000
    millis = round(millis_f) if math.isfinite(millis_f) else -1
    if millis < 0 or float(Fraction(millis, 1000)) != seconds:
        return format(Decimal(repr(float(seconds))), "f") + "s"
    if millis < 1000:
        return f"{millis}ms" if millis else "0s"
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    if millis:
        whole, frac = divmod(millis, 1000)
        parts.append(f"{whole}.{frac:03d}".rstrip("0") + "s" if frac else f"{whole}s")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Field validators (plain functions so messages are ours, not pydantic's)


def _duration(value: object) -> float:
    return parse_duration(value)  # type: ignore[arg-type]  # parse_duration rejects other types


def _positive_duration(value: object) -> float:
    seconds = _duration(value)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {show(value)}")
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]


def _int_between(lo: int, hi: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
            number = int(value)
        if number is None or not lo <= number <= hi:
            raise ValueError(f"must be an integer from {lo} to {hi}, got {show(value)}")
        return number

    return check


def _text(value: object, secret: bool) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {kind(value)}")
    if not value:
        raise ValueError("must not be empty")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if secret and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def _plain_text(value: object) -> str:
    return _text(value, secret=False)


def _secret_text(value: object) -> str:
    return _text(value, secret=True)


def _path(value: object) -> Path:
    if isinstance(value, PurePath):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"must be a file path, got {kind(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ValueError("cannot expand '~' in this path") from None


def _optional_path(value: object) -> Path | None:
    return None if value is None else _path(value)


def _url_problem(value: str) -> str | None:
    """Why ``value`` is not an absolute http(s) URL with a host; never echoes the URL."""
    if any(c.isspace() or ord(c) < 32 for c in value):
        return "must be an http(s) URL without spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError:
        return "must be an http(s) URL (the host or port is malformed)"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http(s) URL"
    if not parts.hostname:
        return "must be an http(s) URL with a host"
    return None


def _http_url(value: object) -> str:
    text = _plain_text(value)
    problem = _url_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _secret_http_url(value: object) -> str:
    text = _secret_text(value)
    problem = _url_problem(text)
    if problem:
        raise ValueError(problem)
    return text


_WHSEC_HELP = "must start with 'whsec_' followed by base64 (24-64 bytes)"


def _webhook_secret(value: object) -> str:
    import base64
    import binascii

    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        raise ValueError(f"must be a 'whsec_...' string (base64, 24-64 bytes), got {kind(value)}")
    if not value.startswith("whsec_"):
        raise ValueError(_WHSEC_HELP)
    body = value[len("whsec_") :]
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{_WHSEC_HELP}; the part after 'whsec_' is not valid base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError(f"{_WHSEC_HELP}; it decodes to {len(raw)} bytes")
    try:
        Webhook(value)
    except Exception:
        raise ValueError(_WHSEC_HELP) from None
    return value


def _event(value: object) -> str:
    if isinstance(value, str) and value in EVENT_TYPES:
        return value
    raise ValueError(f"unknown event {show(value)} (allowed: {', '.join(EVENT_TYPES)})")


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _endpoint_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {kind(value)}")
    if not _NAME_RE.match(value):
        raise ValueError(
            f"invalid endpoint name {show(value)}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter, digit or '_'"
        )
    return value


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, ``*.localhost`` and loopback addresses."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain_http_host(url: str) -> str | None:
    """The host of ``url`` when it is plain http to a non-loopback host, else None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        return host
    return None


# --------------------------------------------------------------------------------------------
# Models

_MODEL = ConfigDict(extra="forbid", frozen=True)
EventType = Literal["lip_sync.succeeded", "lip_sync.failed"]
_ALL_EVENTS: list[EventType] = ["lip_sync.succeeded", "lip_sync.failed"]
assert tuple(_ALL_EVENTS) == EVENT_TYPES == (SUCCEEDED, FAILED)


def _events(value: object) -> list[str]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of events ({', '.join(EVENT_TYPES)}), got {kind(value)}")
    if not value:
        raise ValueError(f"must list at least one event ({', '.join(EVENT_TYPES)})")
    problems: list[tuple[Loc, str]] = []
    events: list[str] = []
    for i, item in enumerate(value):
        try:
            event = _event(item)
        except ValueError as exc:
            problems.append(((i,), str(exc)))
            continue
        if event not in events:
            events.append(event)
    if problems:
        raise _KeyedProblems(problems)
    return events


Events = Annotated[list[EventType], BeforeValidator(_events)]


class ChanjingConfig(BaseModel):
    """How to reach the vendor API."""

    model_config = _MODEL

    base_url: str = "https://open-api.chanjing.cc"
    app_id: Annotated[str, BeforeValidator(_plain_text)]
    secret_key: Annotated[SecretStr, BeforeValidator(_secret_text)]
    #: Vendor calls per second, shared by everything this process does.
    qps: Annotated[int, BeforeValidator(_int_between(1, 1000))] = 10

    @field_validator("base_url", mode="before")
    @classmethod
    def _check_base_url(cls, value: object) -> str:
        url = _http_url(value)
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        return url.rstrip("/")


class StateConfig(BaseModel):
    """Where the SQLite state database lives."""

    model_config = _MODEL

    path: Annotated[Path, BeforeValidator(_path)] = Path("/var/lib/chanjing-notifier/state.db")


class WatchConfig(BaseModel):
    """The optional watch file."""

    model_config = _MODEL

    file: Annotated[Path | None, BeforeValidator(_optional_path)] = None


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
            raise _KeyedProblems(
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
        raise _KeyedProblems(problems)
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
    concurrency: Annotated[int, BeforeValidator(_int_between(1, 256))] = 8


class _EndpointBase(BaseModel):
    model_config = _MODEL

    name: Annotated[str, BeforeValidator(_endpoint_name)]
    events: Events = Field(default_factory=lambda: list(_ALL_EVENTS))

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribes to ``event_type``."""
        return event_type in self.events

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
    url: Annotated[str, BeforeValidator(_http_url)]
    #: Signing secrets (``whsec_…``); the callback carries one signature per secret.
    secret: list[Annotated[SecretStr, BeforeValidator(_webhook_secret)]]

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
    url: Annotated[SecretStr, BeforeValidator(_secret_http_url)]

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


class MetricsConfig(BaseModel):
    """The optional Prometheus listener."""

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


_SECTION_DEFAULTS = ("state", "watch", "polling", "delivery", "log", "metrics")


class Config(BaseModel):
    """The whole configuration file."""

    model_config = _MODEL

    chanjing: ChanjingConfig
    state: StateConfig = Field(default_factory=StateConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    endpoints: list[Annotated[Endpoint, Field(discriminator="type")]] = Field(default_factory=list)
    log: LogConfig = Field(default_factory=LogConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)

    VENDOR_QPS_LIMIT: ClassVar[int] = 10

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
        return data

    @field_validator("endpoints", mode="after")
    @classmethod
    def _unique_names(cls, endpoints: list[Endpoint]) -> list[Endpoint]:
        first: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, endpoint in enumerate(endpoints):
            if endpoint.name in first:
                problems.append(
                    (
                        (i, "name"),
                        f"duplicate endpoint name {endpoint.name!r} "
                        f"(already used by endpoints[{first[endpoint.name]}])",
                    )
                )
            else:
                first[endpoint.name] = i
        if problems:
            raise _KeyedProblems(problems)
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
        found = [self.chanjing.secret_key.get_secret_value()]
        for endpoint in self.endpoints:
            if isinstance(endpoint, WebhookEndpoint):
                found.extend(endpoint.secret_values())
            else:
                found.append(endpoint.target_url())
        unique = [s for s in dict.fromkeys(found) if s]
        return sorted(unique, key=len, reverse=True)

    def warnings(self) -> list[str]:
        """Things that are allowed but probably not intended; no secrets in them."""
        out: list[str] = []
        host = _plain_http_host(self.chanjing.base_url)
        if host is not None:
            out.append(
                f"chanjing.base_url: plain http to non-loopback host {host}; "
                "the secret key and access token travel unencrypted; use https"
            )
        vendor_host = urlsplit(self.chanjing.base_url).hostname or ""
        if vendor_host.endswith("chanjing.cc") and self.chanjing.qps > self.VENDOR_QPS_LIMIT:
            out.append(
                f"chanjing.qps: {self.chanjing.qps} is above the vendor's limit of "
                f"{self.VENDOR_QPS_LIMIT} requests/second; expect rate-limit errors"
            )
        if not self.endpoints:
            out.append("no endpoints configured: events will be recorded but not sent")
        for i, endpoint in enumerate(self.endpoints):
            host = _plain_http_host(endpoint.target_url())
            if host is not None:
                out.append(f"endpoints[{i}].url: plain http to non-loopback host {host}; use https")
        if self.polling.give_up_after < self.polling.min_interval:
            out.append(
                "polling.give_up_after: shorter than polling.min_interval; "
                "jobs will be given up after their first poll"
            )
        return out


_SECTIONS: dict[str, type[BaseModel]] = {
    "chanjing": ChanjingConfig,
    "state": StateConfig,
    "watch": WatchConfig,
    "polling": PollingConfig,
    "delivery": DeliveryConfig,
    "log": LogConfig,
    "metrics": MetricsConfig,
}


# --------------------------------------------------------------------------------------------
# YAML


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    def __init__(self, key: object, mark: yaml.Mark) -> None:
        super().__init__(None, None, f"duplicate key {show(key)}", mark)
        self.key = key


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[object] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, yaml.ScalarNode
                ):
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue
                if duplicate:
                    raise _DuplicateKeyError(key, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml_file(
    path: str | os.PathLike[str], error: type[ProblemsError] = ConfigError
) -> object:
    """Parse the YAML file at ``path``; problems raise ``error`` with ``<path>: …`` lines."""
    source = os.fspath(path)

    def fail(problem: str) -> NoReturn:
        raise error([f"{source}: {problem}"])

    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        fail("file not found")
    except IsADirectoryError:
        fail("is a directory, not a file")
    except PermissionError:
        fail("permission denied")
    except OSError as exc:
        fail(f"cannot read file: {exc.strerror or exc.__class__.__name__}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"not valid UTF-8 text (bad byte at offset {exc.start})")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except _DuplicateKeyError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        fail(f"YAML error{where}: {exc.problem}")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        fail(f"YAML syntax error{where}: {problem}")
    except yaml.reader.ReaderError as exc:
        fail(
            f"YAML syntax error at character {exc.position + 1}: "
            f"character {exc.character!r} is not allowed in YAML"
        )
    except yaml.YAMLError as exc:
        fail(f"YAML syntax error: {str(exc).splitlines()[0] if str(exc) else 'invalid YAML'}")
    except RecursionError:
        fail("YAML is nested too deeply")


# --------------------------------------------------------------------------------------------
# ${VAR} expansion

_REF_RE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def _expand_str(
    text: str, loc: Loc, environ: Mapping[str, str], problems: list[tuple[Loc, str]]
) -> str:
    if "${" not in text:
        return text
    missing: list[str] = []
    malformed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal malformed
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            malformed = True
            return ""
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return ""
        return value

    result = _REF_RE.sub(replace, text)
    if malformed:
        problems.append(
            (
                loc,
                "malformed ${...} reference: use ${NAME} or ${NAME:-default} "
                "(NAME: letters, digits, '_'); write $${ for a literal ${",
            )
        )
    if missing:
        names = list(dict.fromkeys(missing))
        if len(names) == 1:
            problems.append((loc, f"environment variable {names[0]} is not set"))
        else:
            problems.append((loc, f"environment variables {', '.join(names)} are not set"))
    return result


def _expand(
    node: object, loc: Loc, environ: Mapping[str, str], problems: list[tuple[Loc, str]]
) -> object:
    """Replace ``${VAR}`` in every string value (not in keys) below ``node``."""
    if isinstance(node, str):
        return _expand_str(node, loc, environ, problems)
    if isinstance(node, dict):
        return {
            key: _expand(
                value, (*loc, key if isinstance(key, str) else str(key)), environ, problems
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_expand(item, (*loc, i), environ, problems) for i, item in enumerate(node)]
    return node


# --------------------------------------------------------------------------------------------
# Turning pydantic errors into lines


def _normalize_loc(loc: tuple[int | str, ...]) -> tuple[Loc, str | None]:
    """Drop the discriminator tag pydantic puts in ``endpoints[i]`` paths; return it apart."""
    out: list[str | int] = []
    tag: str | None = None
    for i, part in enumerate(loc):
        if (
            i == 2
            and loc[0] == "endpoints"
            and isinstance(loc[1], int)
            and isinstance(part, str)
            and part in ENDPOINT_TYPES
        ):
            tag = part
            continue
        out.append(part)
    return tuple(out), tag


_MISSING = object()


def _raw_at(data: object, loc: Loc) -> object:
    for part in loc:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return _MISSING
        data = data[part]  # type: ignore[index]
    return data


def _model_at(loc: Loc, tag: str | None, raw: object) -> type[BaseModel] | None:
    if not loc:
        return Config
    if len(loc) == 1 and isinstance(loc[0], str):
        return _SECTIONS.get(loc[0])
    if len(loc) == 2 and loc[0] == "endpoints" and isinstance(loc[1], int):
        if tag is None:
            item = _raw_at(raw, loc)
            kind_ = item.get("type") if isinstance(item, dict) else None
            tag = kind_ if isinstance(kind_, str) else None
        return ENDPOINT_TYPES.get(tag) if tag else None
    return None


def _is_secret(loc: Loc, tag: str | None) -> bool:
    return any(p in ("secret", "secret_key") for p in loc) or (tag == "slack" and "url" in loc)


def _translate(error: ErrorDetails, raw: object) -> list[tuple[Loc, str]]:
    loc, tag = _normalize_loc(error["loc"])
    kind_of = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind_of in ("value_error", "assertion_error"):
        exc = ctx.get("error")
        if isinstance(exc, _KeyedProblems):
            return [((*loc, *sub), msg) for sub, msg in exc.items]
        msg = str(exc) if exc is not None else error["msg"]
        # A single secret string is wrapped into a list before validation: blame the key.
        secret_item = loc and isinstance(loc[-1], int) and loc[-2:-1] == ("secret",)
        if secret_item and isinstance(_raw_at(raw, loc[:-1]), str):
            loc = loc[:-1]
        return [(loc, msg)]
    if kind_of == "missing":
        return [(loc, "required key is missing")]
    if kind_of == "extra_forbidden":
        model = _model_at(loc[:-1], tag, raw)
        allowed = f" (allowed: {', '.join(model.model_fields)})" if model else ""
        return [(loc, f"unknown key{allowed}")]
    if kind_of == "union_tag_invalid":
        item = _raw_at(raw, loc)
        given = item.get("type") if isinstance(item, dict) else None
        shown = show(given) if isinstance(given, str) else f"a {kind(given)}"
        return [
            (
                (*loc, "type"),
                f"unknown endpoint type {shown} (allowed: {', '.join(ENDPOINT_TYPES)})",
            )
        ]
    if kind_of == "union_tag_not_found":
        return [((*loc, "type"), f"required key is missing (one of: {', '.join(ENDPOINT_TYPES)})")]
    if kind_of in ("dict_type", "model_type", "model_attributes_type"):
        return [(loc, f"must be a mapping, got {kind(value)}")]
    if kind_of in ("list_type", "tuple_type"):
        return [(loc, f"must be a list, got {kind(value)}")]
    if kind_of == "string_type":
        return [(loc, f"must be a string, got {kind(value)}")]
    if kind_of == "literal_error":
        expected = str(ctx.get("expected", ""))
        got = "" if _is_secret(loc, tag) else f", got {show(value)}"
        return [(loc, f"must be one of {expected}{got}")]
    message = error["msg"]
    return [(loc, message[:1].lower() + message[1:])]


def _startswith(loc: Loc, prefix: Loc) -> bool:
    return loc[: len(prefix)] == prefix


# --------------------------------------------------------------------------------------------
# Entry points


def parse_config(
    data: object,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Validate already-parsed YAML ``data`` (expanding ``${VAR}`` from ``environ``).

    Relative ``state.path`` and ``watch.file`` are resolved against ``base_dir`` when given.
    Raises :class:`ConfigError` with every problem found, each prefixed by ``source``.
    """
    if data is None:
        raise ConfigError([f"{source}: file is empty"])
    if not isinstance(data, dict):
        raise ConfigError(
            [
                f"{source}: top level must be a mapping with keys "
                f"{', '.join(Config.model_fields)}; got {kind(data)}"
            ]
        )
    env_problems: list[tuple[Loc, str]] = []
    try:
        expanded = _expand(data, (), os.environ if environ is None else environ, env_problems)
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        problems = list(env_problems)
        for error in exc.errors():
            for loc, msg in _translate(error, data):
                if not any(_startswith(loc, bad) for bad, _ in env_problems):
                    problems.append((loc, msg))
        raise ConfigError(_lines(source, problems)) from None
    except RecursionError:
        raise ConfigError([f"{source}: nested too deeply (or recursive YAML aliases)"]) from None
    if env_problems:
        raise ConfigError(_lines(source, env_problems))
    if base_dir is not None:
        config = _resolve_paths(config, Path(base_dir))
    return config


def _lines(source: str, problems: list[tuple[Loc, str]]) -> list[str]:
    return [
        f"{source}: {dotted(loc)}: {msg}" if loc else f"{source}: {msg}" for loc, msg in problems
    ]


def _resolve_paths(config: Config, base: Path) -> Config:
    state = config.state
    if not state.path.is_absolute():
        state = state.model_copy(update={"path": base / state.path})
    watch = config.watch
    if watch.file is not None and not watch.file.is_absolute():
        watch = watch.model_copy(update={"file": base / watch.file})
    return config.model_copy(update={"state": state, "watch": watch})


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the configuration file at ``path``.

    ``environ`` defaults to ``os.environ``. Relative paths inside the file are taken relative
    to the file's directory. Raises :class:`ConfigError`.
    """
    data = read_yaml_file(path, ConfigError)
    return parse_config(
        data, os.fspath(path), environ=environ, base_dir=Path(path).absolute().parent
    )
