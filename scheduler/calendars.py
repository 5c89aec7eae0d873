"""Calendars of contract 5: iCalendar feeds that schedule VPs.

* :func:`fetch_feed` — GET the feed under the outbound URL rules (:mod:`scheduler.netguard`,
  re-checked at every redirect hop), capped at :data:`MAX_FEED_BYTES`.
* :func:`occurrences` — parse with ``icalendar``, expand recurrences with
  ``recurring-ical-events`` over the next :data:`HORIZON`, and keep occurrences that carry a
  supported meeting link (:func:`meeting_link`: the first URL in CONFERENCE / the vendors'
  conference properties, URL, LOCATION, DESCRIPTION that :func:`platforms.registry.resolve`
  accepts — any platform, any host on ``VP_ALLOWED_HOSTS``).
* :func:`plan` — pure: the occurrences wanted vs. the VPs the calendar scheduled → what to
  launch and what to cancel. An occurrence is keyed by its UID (plus its RECURRENCE-ID for
  a recurring event), so a moved event is the same occurrence with a new start: its VP is
  cancelled and a new one scheduled at the new start (a VP's ``join_at`` is immutable).
* :class:`CalendarSync` runs one sync of one calendar against the service; the poller in
  :mod:`scheduler.hooks` runs it for every calendar every ``--calendar-poll`` seconds and
  records each result on the calendar (last error, last success); a broken feed never stops
  the poller.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import icalendar
import recurring_ical_events  # type: ignore[import-untyped]

from platforms.registry import resolve
from scheduler.netguard import UrlRefused, pinned_target
from scheduler.webhooks import new_client
from vp.errors import InvalidUrl

MAX_FEED_BYTES = 1024 * 1024
FETCH_TIMEOUT = 15.0
MAX_REDIRECTS = 3
HORIZON = timedelta(hours=24)
MAX_OCCURRENCES = 200  # per calendar and sync: a feed cannot launch a flood of VPs
# Where meeting links live, most specific first.
LINK_PROPERTIES = (
    "CONFERENCE",
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-ONLINEMEETINGCONFLINK",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "URL",
    "LOCATION",
    "DESCRIPTION",
)
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"'\\]+", re.IGNORECASE)


class FeedError(Exception):
    """The feed could not be fetched or parsed; the message is recorded on the calendar."""


async def fetch_feed(
    url: str, allowed_hosts: frozenset[str], *, verify: ssl.SSLContext | bool = True
) -> bytes:
    """The feed's bytes. Raises :class:`FeedError` (refused URL, HTTP error, too large)."""
    if url.lower().startswith("webcal://"):
        url = "https://" + url[len("webcal://") :]
    async with new_client(verify) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                target = await pinned_target(url, allowed_hosts)
            except UrlRefused as exc:
                raise FeedError(str(exc)) from None
            headers = {"accept": "text/calendar", **target.headers}
            request = client.build_request(
                "GET", target.url, headers=headers, extensions=target.extensions,
                timeout=FETCH_TIMEOUT,
            )  # fmt: skip
            try:
                async with contextlib.aclosing(await client.send(request, stream=True)) as resp:
                    if resp.is_redirect and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    if resp.status_code != 200:
                        raise FeedError(f"HTTP {resp.status_code}")
                    length = resp.headers.get("content-length", "")
                    if length.isdigit() and int(length) > MAX_FEED_BYTES:
                        raise FeedError(f"feed larger than {MAX_FEED_BYTES} bytes")
                    body = bytearray()
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_FEED_BYTES:
                            raise FeedError(f"feed larger than {MAX_FEED_BYTES} bytes")
                    return bytes(body)
            except httpx.TimeoutException:
                raise FeedError("timeout") from None
            except httpx.HTTPError as exc:
                raise FeedError(type(exc).__name__) from None
        raise FeedError("too many redirects")


@dataclass(frozen=True, slots=True)
class Occurrence:
    key: str  # UID, plus "|" RECURRENCE-ID for an occurrence of a recurring event
    start: datetime
    meeting_url: str
    summary: str

    @property
    def link_hash(self) -> str:
        return hashlib.sha256(self.meeting_url.encode()).hexdigest()[:16]


def _texts(value: Any) -> Iterable[str]:
    for item in value if isinstance(value, list) else [value]:
        yield str(item)


def meeting_link(event: Any, allowed_hosts: frozenset[str] | None = None) -> str | None:
    """The first supported meeting URL in the event's link properties, or None."""
    for name in LINK_PROPERTIES:
        value = event.get(name)
        if value is None:
            continue
        for text in _texts(value):
            for found in _URL_IN_TEXT.findall(text):
                url = str(found).rstrip(".,;:)]}>")
                try:
                    resolve(url, None, allowed_hosts)
                except InvalidUrl:
                    continue
                return url
    return None


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # floating: take UTC
    if isinstance(value, date):
        return None  # all-day: no meeting time to join at
    return None


def occurrences(
    feed: bytes, now: datetime, allowed_hosts: frozenset[str] | None = None
) -> tuple[list[Occurrence], set[str]]:
    """(occurrences with a meeting link, not cancelled, overlapping ``now`` … ``now`` +
    :data:`HORIZON`; keys of cancelled ones). Raises :class:`FeedError` for a bad feed."""
    try:
        calendar = icalendar.Calendar.from_ical(feed)
    except Exception as exc:  # icalendar raises ValueError and friends on junk
        raise FeedError(f"not an iCalendar feed ({type(exc).__name__})") from None
    recurring = {
        str(c.get("UID"))
        for c in calendar.walk("VEVENT")
        if c.get("RRULE") is not None or c.get("RECURRENCE-ID") is not None
    }
    try:
        expanded = recurring_ical_events.of(calendar).between(now, now + HORIZON)
    except Exception as exc:
        raise FeedError(f"cannot expand the feed ({type(exc).__name__})") from None
    found: list[Occurrence] = []
    cancelled: set[str] = set()
    for event in expanded:
        start = _aware(event.decoded("DTSTART", None))
        uid = str(event.get("UID") or "")
        if start is None or not uid:
            continue
        key = uid
        if uid in recurring:
            rid = _aware(event.decoded("RECURRENCE-ID", None)) or start
            key = f"{uid}|{rid.astimezone(UTC).isoformat()}"
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            cancelled.add(key)
            continue
        url = meeting_link(event, allowed_hosts)
        if url is None:
            continue
        found.append(Occurrence(key, start.astimezone(UTC), url, str(event.get("SUMMARY", ""))))
        if len(found) >= MAX_OCCURRENCES:
            break
    return found, cancelled


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A VP the calendar scheduled for an occurrence."""

    occurrence: str
    vp_id: str
    start: str  # ISO-8601
    link_hash: str


@dataclass(frozen=True, slots=True)
class Plan:
    launch: list[Occurrence]
    cancel: list[Scheduled]  # cancel if not started, then forget


def plan(wanted: list[Occurrence], scheduled: list[Scheduled]) -> Plan:
    """Pure: launch new or moved occurrences (a changed start or link), cancel VPs of moved,
    cancelled and removed ones. An occurrence already handled is left alone."""
    by_key = {s.occurrence: s for s in scheduled}
    wanted_keys = {o.key for o in wanted}
    launch: list[Occurrence] = []
    cancel: list[Scheduled] = []
    for occ in wanted:
        known = by_key.get(occ.key)
        if known is not None:
            same_start = datetime.fromisoformat(known.start) == occ.start
            if same_start and known.link_hash == occ.link_hash:
                continue
            cancel.append(known)
        launch.append(occ)
    cancel.extend(s for s in scheduled if s.occurrence not in wanted_keys)
    return Plan(launch, cancel)
