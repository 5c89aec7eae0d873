"""Meeting URL parsing and the per-platform host allow-list (contract 1's SSRF guard).

A VP must never browse to an arbitrary or internal address. A URL is accepted only when it
is http(s), carries no userinfo, and its host (and port) is exactly a platform's known host,
a subdomain of a platform's registrable domain, or an entry of ``VP_ALLOWED_HOSTS``.

The check must agree with how Chromium (the WHATWG URL parser) reads the same string, so
anything the two parsers could read differently is refused rather than interpreted:
backslashes (Chromium reads ``https://evil.com\\.zoom.us/`` as host ``evil.com``),
percent-encoded or non-ASCII hosts (Chromium decodes and IDNA-maps them: ``%65vil``,
``evil。zoom.us``), labels outside letters/digits/hyphen, and IPv4 addresses in any form but
dotted decimal (Chromium reads ``127.1``, ``0x7f.1`` and ``2130706433`` as ``127.0.0.1``).
IP literals never match a platform rule; only an exact ``VP_ALLOWED_HOSTS`` entry admits one.
The same :func:`url_allowed` check guards every navigation during the call (vp.navguard).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from vp.errors import InvalidUrl

MAX_URL_LENGTH = 2048
# Query parameters known to carry nothing secret; every other parameter's value is treated as
# a secret (masked in public URLs, scrubbed from logs). An allow-list, because invite links
# carry secrets under names no list can foresee: Zoom pwd/tk/zak, Teams p/context, OAuth
# access_token, a vendor's next signed parameter. Keys are compared case-insensitively.
PUBLIC_QUERY_KEYS = frozenset(
    {
        *("anon", "meetingjoin", "agent", "version", "lang", "locale", "hl", "uname"),
        *("from", "launch"),
        "room",  # a Janus room number (its pin=, if any, stays secret)
        *("authuser", "hs"),  # Google Meet: an account index and a client hint
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# WHATWG: a host whose last label is a number (decimal or 0x-hex) is parsed as IPv4.
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")


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
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidUrl("meeting URL contains whitespace or control characters")
    if "\\" in url:
        # Browsers read "\\" as "/" in http(s) URLs; Python does not: refuse the ambiguity.
        raise InvalidUrl("meeting URL contains a backslash")
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
    _check_host(parts)
    return parts


def _check_host(parts: SplitResult) -> None:
    """Refuse hosts Chromium could read differently from us (see the module docstring)."""
    host = parts.hostname or ""
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host)  # also refuses zone ids ("%25eth0")
        except ValueError as exc:
            raise InvalidUrl("meeting URL has a malformed IPv6 address") from exc
        return
    if not host.isascii():
        raise InvalidUrl("meeting URL host must be ASCII (write an IDN in its xn-- form)")
    if "%" in host:
        raise InvalidUrl("meeting URL host must not be percent-encoded")
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        try:
            ipaddress.IPv4Address(name)  # dotted decimal only: no 127.1, 0x7f.1, 2130706433
        except ValueError as exc:
            raise InvalidUrl("meeting URL host is an IP address in a non-standard form") from exc
        return
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidUrl("meeting URL host is not a valid host name")


def host_key(parts: SplitResult) -> str:
    """``host[:port]`` as ``VP_ALLOWED_HOSTS`` entries are written (IPv6 in brackets)."""
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def operator_allowed(parts: SplitResult, extra: frozenset[str]) -> bool:
    """True when the URL's ``host[:port]`` is an entry of ``VP_ALLOWED_HOSTS`` (exactly;
    a URL without a port also matches an entry with its scheme's default port)."""
    key = host_key(parts)
    if key in extra:
        return True
    default = _DEFAULT_PORTS.get(parts.scheme)
    return parts.port is None and default is not None and f"{key}:{default}" in extra


def host_allowed(parts: SplitResult, rules: tuple[HostRule, ...], extra: frozenset[str]) -> bool:
    """True when the URL's host is on a platform's rules or the operator's extra list."""
    if operator_allowed(parts, extra):
        return True
    host = (parts.hostname or "").lower().rstrip(".")
    if is_ip_literal(host):
        return False  # platform rules never name IPs; only VP_ALLOWED_HOSTS may
    if parts.port not in (None, 443) or parts.scheme != "https":
        return False
    return any(rule.matches(host) for rule in rules)


def url_allowed(url: str, rules: tuple[HostRule, ...], extra: frozenset[str]) -> bool:
    """Whether the browser may open ``url`` (a navigation during the call): the same rules
    as the meeting URL. Never raises."""
    try:
        return host_allowed(split_url(url), rules, extra)
    except InvalidUrl:
        return False


def url_secrets(url: str) -> list[str]:
    """The values of every query parameter of ``url`` not in :data:`PUBLIC_QUERY_KEYS`
    (also in a ``#/path?query`` fragment), to be scrubbed from logs like the passcode and
    the token."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    queries = [parts.query]
    if "?" in parts.fragment:
        queries.append(parts.fragment.partition("?")[2])
    return [
        value
        for query in queries
        for key, value in parse_qsl(query, keep_blank_values=False)
        if not is_public_query_key(key) and value
    ]


def is_public_query_key(key: str) -> bool:
    """Whether a query parameter named ``key`` is known not to carry a secret."""
    return key.lower() in PUBLIC_QUERY_KEYS


def _mask_query(query: str) -> str:
    return urlencode(
        [
            (key, value if is_public_query_key(key) else "***")
            for key, value in parse_qsl(query, keep_blank_values=True)
        ]
    )


def redact_url(url: str) -> str:
    """The URL without secrets: scheme, host, path and the values of
    :data:`PUBLIC_QUERY_KEYS` only; every other query value masked (also in a
    ``#/path?query`` fragment, where Teams keeps its meeting), userinfo dropped.

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
