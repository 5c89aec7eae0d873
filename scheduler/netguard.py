"""Outbound URL rules of contract 5 (webhook deliveries, calendar feed fetches): no SSRF.

A URL the service itself fetches or posts to must be ``https`` and must not lead to a
loopback, private, link-local, shared, reserved, multicast or cloud-metadata address. The
host is checked as written *and* after DNS resolution (every address it resolves to), when a
webhook or calendar is registered and again before each delivery or fetch (a name can be
re-pointed after registration). Hosts an operator lists in ``VP_WEBHOOK_ALLOWED_HOSTS`` /
``VP_CALENDAR_ALLOWED_HOSTS`` (``host[:port],…``, the syntax of ``VP_ALLOWED_HOSTS``) are
exempt — then ``http`` is allowed too — for tests and private deployments.

Parsing reuses :func:`vp.urls.split_url` (no user info, no ambiguous host forms).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from urllib.parse import SplitResult

from vp.errors import InvalidUrl
from vp.urls import operator_allowed, parse_allowed_hosts, split_url

WEBHOOK_HOSTS_ENV = "VP_WEBHOOK_ALLOWED_HOSTS"
CALENDAR_HOSTS_ENV = "VP_CALENDAR_ALLOWED_HOSTS"
# Cloud metadata services; most are link-local or private already, named for clarity.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class UrlRefused(ValueError):
    """The URL breaks the outbound rules; the message says why (never the URL's secrets)."""


def allowed_hosts(env: str) -> frozenset[str]:
    """The operator's exempt ``host[:port]`` entries from the variable ``env``."""
    return parse_allowed_hosts(os.environ.get(env))


def public_address(address: str) -> bool:
    """True for a globally routable unicast address that is no metadata endpoint."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in METADATA_ADDRESSES


def check_syntax(url: str, exempt_hosts: frozenset[str]) -> tuple[SplitResult, bool]:
    """Parse ``url``; return its parts and whether its host is operator-exempt. Raises
    :class:`UrlRefused` for a malformed URL, a scheme other than https (http only when
    exempt), or a literal address that is not public."""
    try:
        parts = split_url(url)
    except InvalidUrl as exc:
        raise UrlRefused(str(exc).replace("meeting URL", "URL")) from None
    exempt = operator_allowed(parts, exempt_hosts)
    if exempt:
        return parts, True
    if parts.scheme != "https":
        raise UrlRefused("URL must be https")
    host = (parts.hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return parts, False
    if not public_address(host):
        raise UrlRefused("URL points to a non-public address")
    return parts, False


async def check_resolved(url: str, exempt_hosts: frozenset[str]) -> None:
    """:func:`check_syntax`, then resolve the host: every address must be public (unless the
    host is exempt). Raises :class:`UrlRefused`."""
    parts, exempt = check_syntax(url, exempt_hosts)
    if exempt:
        return
    port = parts.port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, port, type=socket.SOCK_STREAM
        )
    except OSError:
        raise UrlRefused("URL host does not resolve") from None
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or not all(public_address(a) for a in addresses):
        raise UrlRefused("URL host resolves to a non-public address")
