"""Zoom invite URLs → the web client (pure; shared/facts/web-clients.md §1).

Invites (``https://[sub.]zoom.us/j/<id>?pwd=…`` and friends) are rewritten to the "React" web
client ``https://app.zoom.us/wc/<id>/join?pwd=…`` (VX); zoomgov keeps its own host; forms that
need Zoom's own redirects (``/my/<vanity>``, ``events.zoom.us``) open as given.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from vp.urls import HostRule

WEB_CLIENT_HOST = "app.zoom.us"
HOST_RULES = (
    HostRule("zoom.us"),
    HostRule("*.zoom.us"),
    HostRule("zoom.com"),
    HostRule("*.zoom.com"),
    HostRule("zoomgov.com"),
    HostRule("*.zoomgov.com"),
)
# Zoom's own paths on an operator-allowed host (replicas): /wc/<id>/join, /wc/join/<id>.
REPLICA_PATH = re.compile(r"^/(?:wc/(?:join/)?[A-Za-z0-9_-]+(?:/join)?|j/\d{9,12})/?$")

_ID = r"(?P<id>\d[\d -]{7,14}\d)"
_INVITE_PATHS = (
    re.compile(rf"^/(?:j|w|s|wc/join)/{_ID}/?$"),  # invite, webinar, start link, classic client
    re.compile(rf"^/wc/{_ID}/(?:join|start|meeting|videomeeting)/?$"),  # React client paths
)
_PWD = re.compile(r"[A-Za-z0-9]+(?:\.\d+)?")


def _meeting_id(raw: str) -> str | None:
    digits = re.sub(r"[ -]", "", raw)
    return digits if re.fullmatch(r"\d{9,12}", digits) else None


def web_client_url(url: str) -> str:
    """Every invite form → the web-client URL (see the module docstring)."""
    url = url.strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    path = parts.path
    query = parse_qs(parts.query, keep_blank_values=True)
    meeting_id: str | None = None
    for pattern in _INVITE_PATHS:
        match = pattern.match(path)
        if match:
            meeting_id = _meeting_id(match.group("id"))
            break
    if meeting_id is None and path.rstrip("/") == "/join" and "confno" in query:
        meeting_id = _meeting_id(query["confno"][0])
    if meeting_id is None:
        return url  # /my/<vanity>, events.zoom.us/ejl/…: Zoom redirects; open as given
    keep: list[tuple[str, str]] = []
    pwd = (query.get("pwd") or [""])[0]
    pwd_match = _PWD.match(pwd)
    if pwd_match:
        keep.append(("pwd", pwd_match.group(0)))
    token = (query.get("tk") or [""])[0]
    if token:
        keep.append(("tk", token))
    if host == "zoomgov.com" or host.endswith(".zoomgov.com"):
        target_host = host  # government cloud: its own web client, never app.zoom.us
    else:
        target_host = WEB_CLIENT_HOST  # zoom.us, vanity subdomains and zoom.com (→ zoom.us)
    return urlunsplit(("https", target_host, f"/wc/{meeting_id}/join", urlencode(keep), ""))
