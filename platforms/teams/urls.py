"""Teams invite URLs → the launcher-skipping web client, and the guest display name (pure).

Invites come as enterprise ``/l/meetup-join/19%3ameeting_…%40thread.v2/0?context=…`` links,
``/meet/<id>?p=<passcode>`` short links (teams.microsoft.com and teams.live.com), launcher
links (``/dl/launcher/launcher.html?url=/_#/…``) and ``/_#/…`` / ``/v2/#/…`` web-client forms.
:func:`web_client_url` rewrites all of them to ``https://<host>/v2/?meetingjoin=true#/<meeting>
?…&anon=true`` (MB, BAAS, LMA); light-meetings links already are the web client and open as
given. The passcode stays in the fragment: the browser needs it, and the registry's public URL
drops fragments.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from vp.urls import HostRule

HOST_RULES = (
    HostRule("teams.microsoft.com"),
    HostRule("teams.live.com"),
    HostRule("teams.microsoft.us"),
    HostRule("*.teams.microsoft.us"),  # gov., dod.
    HostRule("teams.cloud.microsoft"),
)
# Anonymous join off a tenant that forbids it redirects to Microsoft's sign-in (VX #915): the
# navigation guard lets that through so the decisions can report login-required.
NAVIGATION_RULES = (
    HostRule("login.microsoftonline.com"),
    HostRule("login.microsoftonline.us"),
    HostRule("login.live.com"),
    HostRule("login.microsoft.com"),
)

_MEET_PATH = re.compile(r"^/meet/([A-Za-z0-9]+)/?$")
_MEETUP_PATH = re.compile(r"^/l/meetup-join/[^/?#]+/[^/?#]+/?$", re.I)
_LAUNCHER_PATH = re.compile(r"^/dl/launcher/launcher\.html$", re.I)
_WEBCLIENT_PATH = re.compile(r"^/(?:v2/?|_)?$", re.I)


def _with_anon(target: str) -> str:
    """``target`` ("/meet/<id>?p=…") with ``anon=true`` in its query (other values kept raw)."""
    path, sep, query = target.partition("?")
    if re.search(r"(?:^|&)anon=", query):
        query = re.sub(r"(^|&)anon=[^&]*", r"\1anon=true", query)
    else:
        query = f"{query}&anon=true" if query else "anon=true"
    return f"{path}?{query}"


def _meeting_target(url: str) -> str | None:
    """The meeting part of a Teams URL ("/meet/<id>?…" or "/l/meetup-join/…?…"), or None."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if _MEET_PATH.match(path) or _MEETUP_PATH.match(path):
        return path + (f"?{parts.query}" if parts.query else "")
    if _LAUNCHER_PATH.match(path):
        inner = dict(parse_qsl(parts.query, keep_blank_values=True)).get("url", "")
        if "#" not in inner and parts.fragment:
            inner = f"{inner}#{parts.fragment}"  # url=/_#/… left unescaped in the link
        inner = re.sub(r"^/?_?#?", "", inner)
        return _target_from_fragment(inner)
    if _WEBCLIENT_PATH.match(path) and parts.fragment:
        return _target_from_fragment(parts.fragment)
    return None


def _target_from_fragment(fragment: str) -> str | None:
    fragment = "/" + fragment.lstrip("/")
    path = fragment.partition("?")[0]
    if _MEET_PATH.match(path) or _MEETUP_PATH.match(path):
        return fragment
    return None


def web_client_url(url: str) -> str:
    """Rewrite a Teams invite to the web client that skips the launcher (pure)."""
    url = url.strip()
    parts = urlsplit(url)
    target = _meeting_target(url)
    if target is None:
        return url  # light-meetings links and unknown forms open as given
    return urlunsplit(("https", parts.netloc, "/v2/", "meetingjoin=true", _with_anon(target)))


def with_passcode(url: str, passcode: str | None) -> str:
    """``url`` with ``p=<passcode>`` added to a ``/meet/<id>`` target that lacks one (pure)."""
    if not passcode:
        return url
    parts = urlsplit(url)

    def add(query: str) -> str | None:
        if any(k == "p" for k, _ in parse_qsl(query, keep_blank_values=True)):
            return None
        p = f"p={quote(passcode, safe='')}"
        return f"{p}&{query}" if query else p

    if _MEET_PATH.match(parts.path or ""):
        query = add(parts.query)
        return url if query is None else urlunsplit(parts._replace(query=query))
    if parts.fragment:
        fpath, _, fquery = ("/" + parts.fragment.lstrip("/")).partition("?")
        if _MEET_PATH.match(fpath):
            query = add(fquery)
            if query is None:
                return url
            return urlunsplit(parts._replace(fragment=f"{fpath}?{query}"))
    return url


# Guest names containing "notetaker" are filtered by some tenants (ATT swaps in look-alikes).
_LOOKALIKES = str.maketrans({"o": "\u043e", "e": "\u0435", "a": "\u0430"})
_FILTERED_WORD = re.compile(r"notetaker", re.I)


def teams_display_name(name: str) -> str:
    cleaned = " ".join(name.split())[:100] or "Virtual Participant"
    return _FILTERED_WORD.sub(lambda m: m.group(0).translate(_LOOKALIKES), cleaned)
