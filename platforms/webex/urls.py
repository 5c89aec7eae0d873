"""Webex meeting URLs (pure).

Accepted forms (shared/facts/web-clients-meet-webex.md, Webex › URLs):

* personal rooms ``https://<site>.webex.com/meet/<name>`` (``/<site>/meet/<name>`` too);
* ``https://<site>.webex.com/<site>/j.php?MTID=<token>``: the MTID is an opaque token, so the
  URL is opened whole, as given;
* the invite form ``/wbxmjs/joinservice/sites/<site>/meeting/download/<hex>?…&MTID=…``.

``pwd`` / ``password`` query parameters carry the meeting password: they are secrets (masked by
:func:`vp.urls.redact_url`, which masks every parameter outside its public allow-list).
The password typed on the password page is the URL's when it has one, else ``--passcode``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from vp.errors import InvalidUrl
from vp.urls import HostRule

HOST_RULES = (HostRule("*.webex.com"),)
PASSWORD_KEYS = ("pwd", "password")
_PERSONAL = re.compile(r"(?:/[a-z0-9-]+)?/meet/([A-Za-z0-9._-]{1,64})/?", re.I)
_JPHP = re.compile(r"(?:/[a-z0-9-]+)+/j\.php", re.I)
_JOINSERVICE = re.compile(
    r"/wbxmjs/joinservice/sites/[a-z0-9-]+/meeting/download/[0-9a-f]+/?", re.I
)


def _query(url: str) -> dict[str, str]:
    return {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=False)}


def meeting_key(url: str) -> str | None:
    """What identifies the meeting: ``meet/<name>`` for a personal room, the MTID for a
    j.php / joinservice link; None when ``url`` is neither."""
    parts = urlsplit(url.strip())
    path = parts.path
    if _JPHP.fullmatch(path) or _JOINSERVICE.fullmatch(path):
        mtid = _query(url).get("mtid")
        return mtid or None
    m = _PERSONAL.fullmatch(path)
    return f"meet/{m.group(1)}" if m else None


def password_of(url: str) -> str | None:
    """The meeting password a link carries (``pwd`` or ``password``), if any."""
    query = _query(url)
    for key in PASSWORD_KEYS:
        if query.get(key):
            return query[key]
    return None


def web_client_url(url: str) -> str:
    """The URL to open: the link itself (MTIDs are opaque; nothing is rebuilt)."""
    if meeting_key(url) is None:
        raise InvalidUrl(
            "not a Webex meeting link (expected <site>.webex.com/meet/<name> or"
            " <site>.webex.com/<site>/j.php?MTID=…)"
        )
    return url.strip()
