"""Google Meet: meeting links → the web-client URL pinned to English, the host allow-list,
inference, and the links refused with a clear invalid-url detail (pure; no browser)."""

from __future__ import annotations

import pytest

from platforms.meet import MeetDriver
from platforms.registry import resolve
from vp.errors import InvalidUrl

CODE = "https://meet.google.com/abc-defg-hij?hl=en"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://meet.google.com/abc-defg-hij", CODE),
        ("https://meet.google.com/abc-defg-hij/", CODE),
        ("meet.google.com/abc-defg-hij", CODE),  # as pasted, no scheme
        ("https://meet.google.com/ABC-DEFG-HIJ", CODE),
        ("https://meet.google.com/abc-defg-hij#frag", CODE),
        ("https://meet.google.com/abc-defg-hij?hl=de", CODE),  # pinned to English
        ("https://meet.google.com/abc-defg-hij?pli=1&utm_source=x", CODE),
        (
            "https://meet.google.com/abc-defg-hij?authuser=0&hs=178",  # BaaS keeps the query
            "https://meet.google.com/abc-defg-hij?authuser=0&hs=178&hl=en",
        ),
        (
            "https://meet.google.com/abc-defg-hij?authuser=1&hl=fr",
            "https://meet.google.com/abc-defg-hij?authuser=1&hl=en",
        ),
        # Workspace nicknames (Vexa: ^[a-z0-9][a-z0-9-]{3,38}[a-z0-9]$)
        ("https://meet.google.com/team-standup", "https://meet.google.com/team-standup?hl=en"),
        ("https://meet.google.com/weekly1", "https://meet.google.com/weekly1?hl=en"),
    ],
)
def test_meeting_links_open_the_web_client_in_english(url, expected):
    assert MeetDriver.web_client_url(url) == expected
    meeting = resolve(url if "://" in url else f"https://{url}", allowed_hosts=frozenset())
    assert meeting.platform == "meet"  # inferred from the host
    assert meeting.url == expected
    assert meeting.public_url == expected  # nothing secret in a Meet link


@pytest.mark.parametrize(
    "url",
    [
        "https://meet.google.com/lookup/abcdefgh12",
        "https://meet.google.com/lookup/abcdefgh12?authuser=0&hs=179",
        "https://meet.google.com/LOOKUP/abcdefgh12",
    ],
)
def test_lookup_links_are_refused_with_a_clear_detail(url):
    with pytest.raises(InvalidUrl, match="lookup/ links cannot be joined directly"):
        resolve(url, allowed_hosts=frozenset())


@pytest.mark.parametrize(
    "url",
    [
        "https://meet.google.com/",
        "https://meet.google.com/new",
        "https://meet.google.com/landing",
        "https://meet.google.com/abc",  # too short for a nickname
        "https://meet.google.com/abc-defg-hij/extra",
        "https://meet.google.com/-abc-defg",
        "https://meet.google.com/abc_defg_hij",
    ],
)
def test_other_paths_are_not_meetings(url):
    with pytest.raises(InvalidUrl, match="not a Google Meet meeting link"):
        resolve(url, "meet", allowed_hosts=frozenset())


@pytest.mark.parametrize(
    "url",
    [
        "https://meet.google.com.evil.example/abc-defg-hij",
        "https://evil.example/meet.google.com/abc-defg-hij",
        "https://accounts.google.com/abc-defg-hij",  # a navigation host, never a meeting host
        "https://workspace.google.com/products/meet/",
        "http://127.0.0.1:8080/abc-defg-hij",
    ],
)
def test_other_hosts_are_not_allowed(url):
    with pytest.raises(InvalidUrl):
        resolve(url, "meet", allowed_hosts=frozenset())


def test_operator_allowed_hosts_open_as_given():
    url = "http://127.0.0.1:8080/abc-defg-hij?authuser=0"
    meeting = resolve(url, "meet", allowed_hosts=frozenset({"127.0.0.1:8080"}))
    assert meeting.url == url  # the driver pins hl=en when it opens the page


def test_sign_in_and_block_pages_are_navigable_during_a_join():
    meeting = resolve("https://meet.google.com/abc-defg-hij", allowed_hosts=frozenset())
    assert meeting.allows("https://accounts.google.com/v3/signin/identifier?continue=x")
    assert meeting.allows("https://workspace.google.com/products/meet/")
    assert not meeting.allows("https://evil.example/")


def test_display_name():
    assert MeetDriver.display_name("  Meeting   Scribe ") == "Meeting Scribe"
    assert len(MeetDriver.display_name("x" * 200)) == 60
