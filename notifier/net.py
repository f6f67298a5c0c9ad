"""TCP sockets whose unacknowledged data the kernel gives up on within a bound.

A request our client timed out on may still sit in the kernel's send queue and be
retransmitted for many minutes (``tcp_retries2``), reaching its server long after we gave
up: during another node's lease, in a second that is already full, after a retry of the same
webhook succeeded. ``TCP_USER_TIMEOUT`` (Linux) aborts the connection once sent data has been
unacknowledged that long, so a request written at ``t`` reaches its server by ``t + bound``
plus its last segment's trip, or never. Each caller picks its bound (see where it is used).
Elsewhere (no such option) the transport is httpx's default.
"""

from __future__ import annotations

import socket
import ssl

import httpx

#: httpx's own default for a client's pool.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
#: The option's number, None where the platform has none.
USER_TIMEOUT_OPTION: int | None = getattr(socket, "TCP_USER_TIMEOUT", None)


def transport(
    user_timeout: float,
    *,
    verify: ssl.SSLContext | bool = True,
    limits: httpx.Limits | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's transport, its sockets bounded by ``user_timeout`` seconds (see above)."""
    options = []
    if USER_TIMEOUT_OPTION is not None:
        options.append((socket.IPPROTO_TCP, USER_TIMEOUT_OPTION, max(1, int(user_timeout * 1000))))
    return httpx.AsyncHTTPTransport(
        verify=verify,
        limits=limits if limits is not None else DEFAULT_LIMITS,
        socket_options=options,
    )


__all__ = ["USER_TIMEOUT_OPTION", "transport"]
