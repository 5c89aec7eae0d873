"""Amazon Chime invite URLs (pure): ``https://app.chime.aws/meetings/<10-digit id>``, which
sends guests on to ``/anonymousJoin``; short forms ``https://chime.aws/<id>`` and
``app.chime.aws/meetings?pin=<id>`` are rewritten to it. Chime links carry no passcode."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from vp.errors import InvalidUrl
from vp.urls import HostRule

HOST_RULES = (HostRule("chime.aws"), HostRule("*.chime.aws"))
WEB_CLIENT = "https://app.chime.aws/meetings/{meeting_id}"
_MEETING_ID = re.compile(r"\d{10}")


def meeting_id_of(url: str) -> str | None:
    """The 10-digit meeting id of a Chime invite link, or None."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    m = re.fullmatch(r"/meetings/(\d{10})", path) or re.fullmatch(r"/(\d{10})", path)
    if m:
        return m.group(1)
    if path in ("", "/meetings"):
        pins = parse_qs(parts.query).get("pin") or []
        if pins:
            pin = re.sub(r"[\s-]", "", pins[0])
            if _MEETING_ID.fullmatch(pin):
                return pin
    return None


def web_client_url(url: str) -> str:
    meeting_id = meeting_id_of(url)
    if meeting_id is None:
        raise InvalidUrl(
            "not an Amazon Chime meeting link (expected app.chime.aws/meetings/<10-digit id>)"
        )
    return WEB_CLIENT.format(meeting_id=meeting_id)
