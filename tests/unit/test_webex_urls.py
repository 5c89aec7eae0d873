"""Webex: the URL forms, the host allow-list, passwords as secrets (pure; no browser)."""

from __future__ import annotations

import pytest

from platforms.registry import resolve
from platforms.webex import WebexDriver
from platforms.webex.urls import meeting_key, password_of
from vp.errors import InvalidUrl
from vp.urls import redact_url, url_secrets

JPHP = "https://acme.webex.com/acme/j.php?MTID=m0f3c9b8a7e6d5c4b3a2918f7e6d5c4b3"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://meet1234.webex.com/meet/pr1234567890", "meet/pr1234567890"),  # L-parse
        ("https://acme.webex.com/meet/jane.doe", "meet/jane.doe"),
        ("https://acme.webex.com/acme/meet/jane.doe/", "meet/jane.doe"),  # EY {site}/meet/…
        (JPHP, "m0f3c9b8a7e6d5c4b3a2918f7e6d5c4b3"),
        (JPHP + "&pwd=s3cret", "m0f3c9b8a7e6d5c4b3a2918f7e6d5c4b3"),
        ("https://acme.webex.com/meet/j.php?MTID=m12ab", "m12ab"),  # EY builds /meet/j.php
        (
            "https://acme.webex.com/wbxmjs/joinservice/sites/acme/meeting/download/"
            "9f8e7d6c?siteurl=acme&MTID=m12ab",
            "m12ab",
        ),
    ],
)
def test_url_forms(url, key):
    assert meeting_key(url) == key
    meeting = resolve(url, allowed_hosts=frozenset())  # inferred from the host
    assert meeting.platform == "webex"
    assert meeting.url == url  # opened as given: the MTID is opaque, kept whole


def test_passwords_are_secrets_and_the_url_keeps_them():
    url = JPHP + "&pwd=s3cret"
    meeting = resolve(url, "webex", allowed_hosts=frozenset())
    assert meeting.url == url
    assert "s3cret" not in meeting.public_url
    assert "s3cret" in url_secrets(url)
    assert password_of(url) == "s3cret"
    assert password_of("https://acme.webex.com/meet/jane?password=p%40ss") == "p@ss"
    assert "p%40ss" not in redact_url("https://acme.webex.com/meet/jane?password=p%40ss")
    assert password_of(JPHP) is None  # then the driver uses --passcode


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.webex.com/",
        "https://acme.webex.com/acme/j.php",  # no MTID
        "https://acme.webex.com/webappng/sites/acme/dashboard",
        "https://signin.webex.com/join",  # the meeting-number form is not supported
    ],
)
def test_not_a_meeting_link(url):
    with pytest.raises(InvalidUrl):
        resolve(url, "webex", allowed_hosts=frozenset())


@pytest.mark.parametrize(
    "url",
    [
        "https://webex.com.evil.example/meet/jane",
        "https://evilwebex.com/meet/jane",
        "http://acme.webex.com/meet/jane",  # https only
        "https://acme.webex.com:8443/meet/jane",
        "https://127.0.0.1/meet/jane",
    ],
)
def test_hosts_off_the_allow_list(url):
    with pytest.raises(InvalidUrl):
        resolve(url, "webex", allowed_hosts=frozenset())


def test_driver_facts():
    assert WebexDriver.capture_all_frames, "the client and its audio are in a frame"
    assert WebexDriver.supports_chat
    assert WebexDriver.display_name("  Meeting   Scribe ") == "Meeting Scribe"
