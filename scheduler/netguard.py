"""Outbound URL rules of contract 5 (webhook deliveries, calendar feed fetches): no SSRF.

A URL the service itself fetches or posts to must be ``https`` and must not lead to a
loopback, private, link-local, shared, reserved, multicast or cloud-metadata address. The
host is checked as written *and* after DNS resolution (every address it resolves to), when a
webhook or calendar is registered and again before each delivery or fetch (a name can be
re-pointed after registration). Hosts an operator lists in ``VP_WEBHOOK_ALLOWED_HOSTS`` /
``VP_CALENDAR_ALLOWED_HOSTS`` (``host[:port],…``, the syntax of ``VP_ALLOWED_HOSTS``) are
exempt — then ``http`` is allowed too — for tests and private deployments.

Parsing reuses :func:`vp.urls.split_url` (no user info, no ambiguous host forms).

No DNS rebinding between the check and the connection: :func:`pinned_target` gives the URL
with its host replaced by the address that was checked, the ``Host`` header and the TLS
server name (httpx's ``sni_hostname`` extension, so the certificate is still verified for
the host name). Clients using it keep no connections alive (a pooled connection must not
serve another host name that resolved to the same address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlunsplit

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


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """What to request: ``url`` (pinned to a checked address), extra ``headers`` and httpx
    request ``extensions``."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


async def pinned_target(url: str, exempt_hosts: frozenset[str]) -> Target:
    """:func:`check_syntax`, then resolve the host: every address must be public (unless the
    host is exempt); the result is pinned to the first of them. Raises :class:`UrlRefused`."""
    parts, exempt = check_syntax(url, exempt_hosts)
    host = (parts.hostname or "").strip("[]")
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if exempt or literal:
        return Target(url)  # exempt, or an address checked already: nothing to resolve
    port = parts.port or 443
    try:
        addresses = await resolve(host, port)
    except OSError:
        raise UrlRefused("URL host does not resolve") from None
    if not addresses or not all(public_address(a) for a in addresses):
        raise UrlRefused("URL host resolves to a non-public address")
    address = addresses[0]
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    return Target(
        urlunsplit(parts._replace(netloc=netloc)),
        headers={"host": parts.netloc},
        extensions={"sni_hostname": host},
    )


async def check_resolved(url: str, exempt_hosts: frozenset[str]) -> None:
    """:func:`pinned_target` for its checks only (at registration)."""
    await pinned_target(url, exempt_hosts)
