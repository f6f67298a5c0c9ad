"""Field validators for the config models: durations, URLs, secrets, names. Plain functions,
so the messages are ours, not pydantic's."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path, PurePath
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    SecretStr,
)
from standardwebhooks import Webhook

from notifier.config.problems import kind, show

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


def int_between(lo: int, hi: int) -> Callable[[object], int]:
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


def plain_text(value: object) -> str:
    return _text(value, secret=False)


def secret_text(value: object) -> str:
    return _text(value, secret=True)


def postgres_url(value: object) -> str:
    """``state.url``: a PostgreSQL URL. Never echoed: it may carry a password."""
    if not isinstance(value, str):
        raise ValueError(f"must be a postgresql:// URL, got {kind(value)}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql://USER:PASS@HOST:PORT/DB URL")
    if not parts.path.strip("/"):
        raise ValueError("must name the database: postgresql://USER:PASS@HOST:PORT/DB")
    return value.strip()


def as_path(value: object) -> Path:
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


def optional_path(value: object) -> Path | None:
    return None if value is None else as_path(value)


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


def http_url(value: object) -> str:
    text = plain_text(value)
    problem = _url_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def secret_http_url(value: object) -> str:
    text = secret_text(value)
    problem = _url_problem(text)
    if problem:
        raise ValueError(problem)
    return text


_WHSEC_HELP = "must start with 'whsec_' followed by base64 (24-64 bytes)"
#: Every secret error ends with how to make a good one (standardwebhooks takes 24-64 bytes).
WHSEC_RECIPE = (
    'make one: python3 -c "import base64, os; '
    "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
)


def webhook_secret(value: object) -> str:
    problem = _webhook_secret_problem(value)
    if problem:
        raise ValueError(f"{problem}; {WHSEC_RECIPE}")
    assert isinstance(value, str | SecretStr)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _webhook_secret_problem(value: object) -> str | None:
    """What is wrong with a ``whsec_`` secret, or None."""
    import base64
    import binascii

    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return f"must be a 'whsec_...' string (base64, 24-64 bytes), got {kind(value)}"
    if not value.startswith("whsec_"):
        return _WHSEC_HELP
    body = value[len("whsec_") :]
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return f"{_WHSEC_HELP}; the part after 'whsec_' is not valid base64"
    if not 24 <= len(raw) <= 64:
        return f"{_WHSEC_HELP}; it decodes to {len(raw)} bytes"
    try:
        Webhook(value)
    except Exception:
        return _WHSEC_HELP
    return None


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def endpoint_name(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {kind(value)}")
    if not _NAME_RE.fullmatch(value):
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


def plain_http_host(url: str) -> str | None:
    """The host of ``url`` when it is plain http to a non-loopback host, else None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        return host
    return None
