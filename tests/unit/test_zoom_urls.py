"""Zoom invite URLs → the web-client URL, and the Zoom host allow-list (contract 1)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from platforms.registry import resolve
from platforms.zoom import ZoomDriver
from vp.errors import InvalidUrl

PWD = "PHVA0zAbCdKtPIZx.1"


@pytest.mark.parametrize(
    ("invite", "web_client"),
    [
        # canonical invites, with and without subdomains (VX rewrites these to the React client)
        (
            f"https://us05web.zoom.us/j/81234567890?pwd={PWD}",
            f"https://app.zoom.us/wc/81234567890/join?pwd={PWD}",
        ),
        (
            f"https://us02web.zoom.us/j/812345678?pwd={PWD}#success",
            f"https://app.zoom.us/wc/812345678/join?pwd={PWD}",
        ),
        ("https://zoom.us/j/81234567890", "https://app.zoom.us/wc/81234567890/join"),
        (
            f"https://acme.zoom.us/j/81234567890?pwd={PWD}&from=addon&uname=x",
            f"https://app.zoom.us/wc/81234567890/join?pwd={PWD}",
        ),
        # zoom.com is normalised to zoom.us (ATT)
        (
            f"https://zoom.com/j/81234567890?pwd={PWD}",
            f"https://app.zoom.us/wc/81234567890/join?pwd={PWD}",
        ),
        (
            "https://www.zoom.com/j/81234567890",
            "https://app.zoom.us/wc/81234567890/join",
        ),
        # registrant token tk is kept (ATT)
        (
            f"https://us06web.zoom.us/w/81234567890?tk=REGTOKEN.abc&pwd={PWD}",
            f"https://app.zoom.us/wc/81234567890/join?pwd={PWD}&tk=REGTOKEN.abc",
        ),
        # the classic client and the React client's own paths normalise to the React client
        (
            f"https://zoom.us/wc/join/81234567890?pwd={PWD}",
            f"https://app.zoom.us/wc/81234567890/join?pwd={PWD}",
        ),
        ("https://zoom.us/wc/81234567890/join", "https://app.zoom.us/wc/81234567890/join"),
        ("https://app.zoom.us/wc/81234567890/start", "https://app.zoom.us/wc/81234567890/join"),
        # join?confno= form, and ids written with dashes/spaces
        (
            f"https://zoom.us/join?confno=81234567890&pwd={PWD}",
            f"https://app.zoom.us/wc/81234567890/join?pwd={PWD}",
        ),
        ("https://zoom.us/j/812-3456-7890", "https://app.zoom.us/wc/81234567890/join"),
        # pwd keeps only the token shape ^[A-Za-z0-9]+(\.\d+)? (ATT)
        (
            "https://zoom.us/j/81234567890?pwd=abcDEF123.1%22junk",
            "https://app.zoom.us/wc/81234567890/join?pwd=abcDEF123.1",
        ),
        # ZoomGov has its own web client: the host is kept
        (
            f"https://agency.zoomgov.com/j/1601234567?pwd={PWD}",
            f"https://agency.zoomgov.com/wc/1601234567/join?pwd={PWD}",
        ),
        # forms that need Zoom's own redirects open as given
        ("https://acme.zoom.us/my/jane.doe", "https://acme.zoom.us/my/jane.doe"),
        (
            "https://events.zoom.us/ejl/AbCdEf/GhIj/launch",
            "https://events.zoom.us/ejl/AbCdEf/GhIj/launch",
        ),
    ],
)
def test_invites_rewrite_to_the_web_client(invite, web_client):
    assert ZoomDriver.web_client_url(invite) == web_client
    meeting = resolve(invite, allowed_hosts=frozenset())
    assert meeting.platform == "zoom"
    assert meeting.url == web_client


def test_secrets_stay_in_the_url_but_not_in_the_public_one():
    meeting = resolve(f"https://us05web.zoom.us/j/81234567890?pwd={PWD}&tk=SECRETTK")
    assert PWD in meeting.url and "SECRETTK" in meeting.url
    assert PWD not in meeting.public_url and "SECRETTK" not in meeting.public_url
    assert urlsplit(meeting.public_url).path == "/wc/81234567890/join"


def test_platform_is_inferred_from_zoom_hosts():
    for url in (
        "https://zoom.us/j/81234567890",
        "https://us02web.zoom.us/j/81234567890",
        "https://zoom.com/j/81234567890",
        "https://zoomgov.com/j/1601234567",
    ):
        assert resolve(url, allowed_hosts=frozenset()).platform == "zoom"


@pytest.mark.parametrize(
    "url",
    [
        "https://zoom.us.evil.com/j/81234567890",
        "https://evilzoom.us/j/81234567890",
        "https://zoom.us@evil.com/j/81234567890",
        "https://user@zoom.us/j/81234567890",
        "https://user:pw@us05web.zoom.us/j/81234567890",
        "http://zoom.us/j/81234567890",
        "http://us05web.zoom.us/j/81234567890",
        "https://zoom.us:8443/j/81234567890",
        "https://10.0.0.5/wc/81234567890/join",
        "https://127.0.0.1/wc/81234567890/join",
        "https://[::1]/wc/81234567890/join",
        "https://169.254.169.254/j/81234567890",
        "https://zoom.usa.com/j/81234567890",
        "https://notzoomgov.com/j/81234567890",
        "ftp://zoom.us/j/81234567890",
        "javascript:alert(1)//zoom.us/j/1",
    ],
)
def test_lookalikes_and_unsafe_urls_are_rejected(url):
    with pytest.raises(InvalidUrl):
        resolve(url, platform="zoom", allowed_hosts=frozenset())


def test_replica_host_opens_as_given():
    url = "http://127.0.0.1:8123/wc/81234567890/join?pwd=123456"
    meeting = resolve(url, platform="zoom", allowed_hosts=frozenset({"127.0.0.1:8123"}))
    assert meeting.url == url
    # Zoom's own web-client paths on an allowed host are recognised without --platform.
    assert resolve(url, allowed_hosts=frozenset({"127.0.0.1:8123"})).platform == "zoom"
    with pytest.raises(InvalidUrl):
        resolve(url, platform="zoom", allowed_hosts=frozenset({"127.0.0.1:8124"}))


def test_display_name():
    assert ZoomDriver.display_name("  Scribe  ") == "Scribe"
    assert len(ZoomDriver.display_name("x" * 100)) == 64
