"""Meeting URL parsing and the per-platform host allow-list (contract 1's SSRF guard).

A VP must never browse to an arbitrary or internal address. A URL is accepted only when it
is http(s), carries no userinfo, and its host (and port) is exactly a platform's known host,
a subdomain of a platform's registrable domain, or an entry of ``VP_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from vp.errors import InvalidUrl

MAX_URL_LENGTH = 2048
# Query parameters that carry meeting secrets in invite links (Zoom pwd, Teams p, …).
# (Teams' meetup-join "context" names the tenant and organizer: not public either.)
SECRET_QUERY_KEYS = frozenset(
    {"pwd", "p", "passcode", "password", "token", "tk", "secret", "context"}
)


@dataclass(frozen=True, slots=True)
class HostRule:
    """``example.com`` matches only that host; ``*.example.com`` matches its subdomains."""

    pattern: str

    def matches(self, host: str) -> bool:
        if self.pattern.startswith("*."):
            suffix = self.pattern[1:]
            return host.endswith(suffix) and len(host) > len(suffix)
        return host == self.pattern


def parse_allowed_hosts(value: str | None) -> frozenset[str]:
    """``VP_ALLOWED_HOSTS=host[:port],…`` → normalised ``host[:port]`` entries."""
    if not value:
        return frozenset()
    entries = set()
    for raw in value.split(","):
        entry = raw.strip().lower()
        if entry:
            entries.add(entry)
    return frozenset(entries)


def env_allowed_hosts() -> frozenset[str]:
    return parse_allowed_hosts(os.environ.get("VP_ALLOWED_HOSTS"))


def split_url(url: str) -> SplitResult:
    """Parse and sanity-check a meeting URL; raise InvalidUrl with a clear reason."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidUrl("meeting URL is empty")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidUrl(f"meeting URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise InvalidUrl("meeting URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidUrl("meeting URL is malformed") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidUrl("meeting URL must be http(s)")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidUrl("meeting URL must not carry user information")
    if not parts.hostname:
        raise InvalidUrl("meeting URL has no host")
    if port == 0:
        raise InvalidUrl("meeting URL has an invalid port")
    return parts


def host_key(parts: SplitResult) -> str:
    host = (parts.hostname or "").lower().rstrip(".")
    return f"{host}:{parts.port}" if parts.port else host


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def host_allowed(parts: SplitResult, rules: tuple[HostRule, ...], extra: frozenset[str]) -> bool:
    """True when the URL's host is on a platform's rules or the operator's extra list."""
    host = (parts.hostname or "").lower().rstrip(".")
    if host_key(parts) in extra or (parts.port is None and host in extra):
        return True
    if is_ip_literal(host):
        return False  # platform rules never name IPs; only VP_ALLOWED_HOSTS may
    if parts.port not in (None, 443) or parts.scheme != "https":
        return False
    return any(rule.matches(host) for rule in rules)


def _mask_query(query: str) -> str:
    return urlencode(
        [
            (key, "***" if key.lower() in SECRET_QUERY_KEYS else value)
            for key, value in parse_qsl(query, keep_blank_values=True)
        ]
    )


def redact_url(url: str) -> str:
    """The URL without secrets: secret query values masked (also in a ``#/path?query``
    fragment, where Teams keeps its meeting), userinfo dropped.

    Safe for logs, status objects and the control plane's public record.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed url>"
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    fragment = ""
    if parts.fragment.startswith("/"):
        path, _, query = parts.fragment.partition("?")
        fragment = f"{path}?{_mask_query(query)}" if query else path
    return urlunsplit((parts.scheme, netloc, parts.path, _mask_query(parts.query), fragment))
