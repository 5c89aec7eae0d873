"""Google Meet meeting URLs (pure).

``https://meet.google.com/abc-defg-hij`` with or without a query (``authuser`` is an account
index, ``hs`` a client hint, ``hl`` the UI language: none is a secret), and Workspace nicknames
(``meet.google.com/<nickname>``, Vexa's ``^[a-z0-9][a-z0-9-]{3,38}[a-z0-9]$``). ``lookup/``
links resolve to a code only after a signed-in redirect (hermes), so they are refused (Vexa).
The page is pinned to English (``hl=en``, Vexa #856): the decisions match English texts.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from vp.errors import InvalidUrl
from vp.urls import HostRule

HOST_RULES = (HostRule("meet.google.com"),)
# Where the client itself sends a guest it will not let in: the sign-in wall (login-required)
# and the Workspace product page (blocked). The navigation guard lets these through so the
# decisions can report them; they are never a meeting URL's host.
NAVIGATION_RULES = (HostRule("accounts.google.com"), HostRule("workspace.google.com"))

MEETING_CODE = re.compile(r"^[a-z]{3}-[a-z]{4}-[a-z]{3}$")
NICKNAME = re.compile(r"^[a-z0-9][a-z0-9-]{3,38}[a-z0-9]$")
# Paths of meet.google.com that are not meetings.
NOT_MEETINGS = frozenset({"new", "landing", "_meet", "about", "calling", "linkredirect"})
KEPT_PARAMS = ("authuser", "hs")


def meeting_path(url: str) -> str:
    """The meeting's code or nickname in a Meet URL (lower case); raise InvalidUrl otherwise."""
    parts = urlsplit(_with_scheme(url))
    path = parts.path.strip("/")
    if path.lower().startswith("lookup/") or path.lower() == "lookup":
        raise InvalidUrl(
            "Google Meet lookup/ links cannot be joined directly (the meeting code is known only"
            " after a signed-in redirect); use the meeting's meet.google.com/abc-defg-hij link"
        )
    code = path.lower()
    if MEETING_CODE.match(code) or (
        NICKNAME.match(code) and code not in NOT_MEETINGS and "/" not in code
    ):
        return code
    raise InvalidUrl(
        "not a Google Meet meeting link (expected meet.google.com/abc-defg-hij or a nickname)"
    )


def _with_scheme(url: str) -> str:
    url = url.strip()
    return url if "://" in url else f"https://{url}"


def with_english(url: str) -> str:
    """``url`` with ``hl=en`` in its query (replacing any other language), fragment dropped."""
    parts = urlsplit(url.strip())
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "hl"]
    query.append(("hl", "en"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def web_client_url(url: str) -> str:
    """``https://meet.google.com/<code>?[authuser=…&hs=…&]hl=en`` for a Meet link (pure)."""
    code = meeting_path(url)
    query = [
        (k, v)
        for k, v in parse_qsl(urlsplit(_with_scheme(url)).query, keep_blank_values=True)
        if k in KEPT_PARAMS
    ]
    base = urlunsplit(("https", "meet.google.com", f"/{code}", urlencode(query), ""))
    return with_english(base)


def display_name(name: str) -> str:
    """Meet's name field takes a plain line of text (60 characters)."""
    return " ".join(name.split())[:60] or "Virtual Participant"
