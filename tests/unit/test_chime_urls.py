"""Amazon Chime: invite forms → the web-app URL, the host allow-list, and the page texts the
driver classifies (pure; no browser)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from platforms.chime import ChimeDriver
from platforms.chime import decisions as chime
from platforms.chime.urls import meeting_id_of
from platforms.registry import resolve
from vp.errors import InvalidUrl

APP = "https://app.chime.aws/meetings/1234567890"


@pytest.mark.parametrize(
    "url",
    [
        "https://app.chime.aws/meetings/1234567890",  # LMA, AMS, CHX
        "https://app.chime.aws/meetings/1234567890/",
        "https://app.chime.aws/meetings/1234567890?attendee=x#frag",
        "https://chime.aws/1234567890",  # the short form in URL lists
        "https://chime.aws/1234567890/",
        "https://app.chime.aws/meetings?pin=1234567890",
        "https://app.chime.aws/meetings/?pin=1234567890",
        "https://app.chime.aws/meetings?pin=1234-56-7890",  # the id as it is printed
        "https://app.chime.aws/meetings?pin=1234%2056%207890",
        "https://APP.CHIME.AWS/meetings/1234567890",
        "  https://app.chime.aws/meetings/1234567890  ",
    ],
)
def test_invite_forms_rewrite_to_the_web_app(url):
    assert ChimeDriver.web_client_url(url) == APP
    meeting = resolve(url, "chime", allowed_hosts=frozenset())
    assert meeting.platform == "chime"
    assert meeting.url == APP
    assert meeting.public_url == APP  # Chime links carry no secret


@pytest.mark.parametrize(
    "url",
    [
        "https://app.chime.aws/meetings/12345",  # not 10 digits
        "https://app.chime.aws/meetings/12345678901",
        "https://app.chime.aws/meetings/abcdefghij",
        "https://app.chime.aws/meetings",  # no id
        "https://app.chime.aws/meetings?pin=12345",
        "https://app.chime.aws/anonymousJoin",  # the guest page itself has no id
        "https://chime.aws/pricing",
        "https://chime.aws/",
    ],
)
def test_links_without_a_meeting_id_are_invalid(url):
    assert meeting_id_of(url) is None
    with pytest.raises(InvalidUrl, match="Chime meeting link"):
        resolve(url, "chime", allowed_hosts=frozenset())


@pytest.mark.parametrize(
    "url",
    [
        "https://app.chime.aws.evil.com/meetings/1234567890",
        "https://chime.aws.evil.com/1234567890",
        "https://evilchime.aws/1234567890",
        "https://app-chime.aws/meetings/1234567890",
        "https://chime.awss/1234567890",
        "https://app.chime.aws@evil.com/meetings/1234567890",
        "https://user@app.chime.aws/meetings/1234567890",
        "https://user:pw@app.chime.aws/meetings/1234567890",
        "http://app.chime.aws/meetings/1234567890",  # not https
        "https://app.chime.aws:8443/meetings/1234567890",  # odd port
        "https://54.239.28.85/meetings/1234567890",  # IP literals are never platform hosts
        "https://[::1]/meetings/1234567890",
        "https://127.0.0.1/meetings/1234567890",
        "ftp://app.chime.aws/meetings/1234567890",
        "javascript:alert(1)//app.chime.aws/meetings/1234567890",
    ],
)
def test_lookalike_and_unsafe_hosts_are_rejected(url):
    with pytest.raises(InvalidUrl):
        resolve(url, "chime", allowed_hosts=frozenset())


def test_host_rules_and_claims():
    for host in ("app.chime.aws", "chime.aws", "APP.chime.aws"):
        assert ChimeDriver.claims(urlsplit(f"https://{host}/meetings/1234567890"))
    for host in ("chime.aws.evil.com", "evilchime.aws", "zoom.us", "teams.microsoft.com"):
        assert not ChimeDriver.claims(urlsplit(f"https://{host}/meetings/1234567890"))


def test_platform_is_inferred_from_the_host(monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    assert resolve("https://chime.aws/1234567890").platform == "chime"
    assert resolve(APP).url == APP


def test_allowed_host_replica_url_opens_as_given():
    url = "http://127.0.0.1:8123/meetings/8123456001"
    meeting = resolve(url, "chime", allowed_hosts=frozenset({"127.0.0.1:8123"}))
    assert meeting.url == url


def test_display_name():
    assert ChimeDriver.display_name("  Meeting   Scribe ") == "Meeting Scribe"
    assert ChimeDriver.display_name("x" * 80) == "x" * 64
    assert ChimeDriver.display_name("   ") == "Virtual Participant"
    assert ChimeDriver.supports_chat and ChimeDriver.capture_track_filter_js is None


# -- page texts (both ASCII and typographic apostrophes) --------------------------------------
@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (chime.TEXTS["not_found"], "Meeting not found"),
        (
            chime.TEXTS["not_found"],
            "This meeting ID isn’t valid. Check the meeting ID and try again.",
        ),
        (chime.TEXTS["not_found"], "This meeting ID isn't valid."),
        (chime.TEXTS["login_required"], "Sign in to join this meeting"),
        (chime.TEXTS["captcha"], "Let’s confirm you are human"),
        (chime.TEXTS["captcha"], "Verify you're a real person"),
        (chime.TEXTS["denied"], "Your request to join the meeting was denied."),
        (chime.TEXTS["denied"], "You weren’t admitted"),
        (chime.TEXTS["wrong_passcode"], "Incorrect moderator passcode. Try again."),
        (chime.TEXTS["lobby"], "Waiting Room"),
        (chime.TEXTS["lobby"], "Your request to join the meeting has been received."),
        (chime.TEXTS["waiting_for_moderator"], "The meeting won’t start until a moderator joins."),
        (chime.TEXTS["waiting_for_moderator"], "This meeting hasn't started"),
        (chime.TEXTS["ended"], "Your meeting has ended"),
        (chime.TEXTS["removed"], "You’ve been removed from the meeting"),
        (chime.TEXTS["removed"], "You've been removed from the meeting"),
    ],
)
def test_page_texts(pattern, text):
    assert pattern.search(text)


@pytest.mark.parametrize(
    "text",
    [
        "Have an Amazon Chime account? Sign in",  # the guest name page offers sign-in
        "Enter your name to join as a guest",
        "Alice left the meeting.",  # a toast about someone else
        "Your connection is unstable. Trying to reconnect…",
    ],
)
def test_ordinary_texts_are_not_refusals_or_ends(text):
    for pattern in (
        chime.TEXTS["not_found"],
        chime.TEXTS["login_required"],
        chime.TEXTS["captcha"],
        chime.TEXTS["denied"],
        chime.TEXTS["wrong_passcode"],
        chime.TEXTS["ended"],
        chime.TEXTS["removed"],
    ):
        assert not pattern.search(text), (pattern.pattern, text)
