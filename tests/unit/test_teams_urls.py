"""Teams invite forms → the web-client URL, the host allow-list, and the driver's pure
page-text classifiers (web-clients.md §2)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from platforms.registry import resolve
from platforms.teams import TeamsDriver
from platforms.teams.decisions import end_signal, join_error
from platforms.teams.urls import teams_display_name, web_client_url, with_passcode
from vp.errors import InvalidUrl
from vp.lifecycle import Reason

THREAD = "19%3ameeting_NjQ4ZjQ2YzAtZTI4Ny00YjYxLWE1NjYtMzE2ZDFkMDc3YjQz%40thread.v2"
CONTEXT = "%7b%22Tid%22%3a%2272f988bf-86f1%22%2c%22Oid%22%3a%220f4c5b8e-1d2a%22%7d"
V2 = "/v2/?meetingjoin=true#"


@pytest.mark.parametrize(
    ("invite", "expected"),
    [
        # enterprise meetup-join
        (
            f"https://teams.microsoft.com/l/meetup-join/{THREAD}/0?context={CONTEXT}",
            f"https://teams.microsoft.com{V2}/l/meetup-join/{THREAD}/0?context={CONTEXT}&anon=true",
        ),
        # same, context left as raw JSON, trailing slash-less message id
        (
            f'https://teams.microsoft.com/l/meetup-join/{THREAD}/1700000000000?context={{"Tid":"t","Oid":"o"}}',
            f'https://teams.microsoft.com{V2}/l/meetup-join/{THREAD}/1700000000000?context={{"Tid":"t","Oid":"o"}}&anon=true',
        ),
        # enterprise short link (MC772556)
        (
            "https://teams.microsoft.com/meet/2345678901234?p=AbCdEf12",
            f"https://teams.microsoft.com{V2}/meet/2345678901234?p=AbCdEf12&anon=true",
        ),
        # consumer / Teams Free short link
        (
            "https://teams.live.com/meet/9312345678901?p=Zx9Yw8",
            f"https://teams.live.com{V2}/meet/9312345678901?p=Zx9Yw8&anon=true",
        ),
        # short link without passcode
        (
            "https://teams.live.com/meet/9312345678901",
            f"https://teams.live.com{V2}/meet/9312345678901?anon=true",
        ),
        # launcher link, url= percent-encoded
        (
            "https://teams.microsoft.com/dl/launcher/launcher.html?url=%2F_%23%2Fl%2Fmeetup-join"
            "%2F19%3Ameeting_abc%40thread.v2%2F0%3Fcontext%3D%257b%2522Tid%2522%253a%2522t%2522%257d"
            "%26anon%3Dtrue&type=meetup-join&deeplinkId=d1&directDl=true&msLaunch=true"
            "&enableMobilePage=true&suppressPrompt=true",
            f"https://teams.microsoft.com{V2}/l/meetup-join/19:meeting_abc@thread.v2/0"
            "?context=%7b%22Tid%22%3a%22t%22%7d&anon=true",
        ),
        # launcher link whose url=/_#/… was not escaped (the fragment escapes into the link's own)
        (
            "https://teams.live.com/dl/launcher/launcher.html?url=/_#/meet/9312345678901?p=Zx9&anon=true",
            f"https://teams.live.com{V2}/meet/9312345678901?p=Zx9&anon=true",
        ),
        # the web client itself: anon=true added / kept / forced
        (
            "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/2345678901234?p=Ab",
            f"https://teams.microsoft.com{V2}/meet/2345678901234?p=Ab&anon=true",
        ),
        (
            "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/2345678901234?p=Ab&anon=true",
            f"https://teams.microsoft.com{V2}/meet/2345678901234?p=Ab&anon=true",
        ),
        (
            "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/2345678901234?anon=false&p=Ab",
            f"https://teams.microsoft.com{V2}/meet/2345678901234?anon=true&p=Ab",
        ),
        # the old web-client root
        (
            f"https://teams.microsoft.com/_#/l/meetup-join/{THREAD}/0?context={CONTEXT}",
            f"https://teams.microsoft.com{V2}/l/meetup-join/{THREAD}/0?context={CONTEXT}&anon=true",
        ),
        # government and new hosts keep their host
        (
            f"https://gov.teams.microsoft.us/l/meetup-join/{THREAD}/0",
            f"https://gov.teams.microsoft.us{V2}/l/meetup-join/{THREAD}/0?anon=true",
        ),
        (
            f"https://dod.teams.microsoft.us/l/meetup-join/{THREAD}/0",
            f"https://dod.teams.microsoft.us{V2}/l/meetup-join/{THREAD}/0?anon=true",
        ),
        (
            "https://teams.cloud.microsoft/meet/2345678901234?p=Ab",
            f"https://teams.cloud.microsoft{V2}/meet/2345678901234?p=Ab&anon=true",
        ),
    ],
)
def test_invites_rewrite_to_the_web_client(invite, expected):
    assert web_client_url(invite) == expected
    resolved = resolve(invite, "teams", allowed_hosts=frozenset())
    assert resolved.url == expected
    assert resolved.platform == "teams"
    assert TeamsDriver.claims(urlsplit(invite))
    # secrets stay in the URL the browser opens, but never in the public one
    public = resolved.public_url
    assert "Ab" not in public.split("/meet/")[-1] and "72f988bf" not in public
    assert re.search(r"[?&](p|context)=(?!%2A%2A%2A)", public) is None


@pytest.mark.parametrize(
    "url",
    [
        # light-meetings links already are the guest web client
        "https://teams.microsoft.com/light-meetings/launch?agent=web&version=26081412345"
        "&coords=eyJjb252ZXJzYXRpb25JZCI6IjE5Om1lZXRpbmdfYWJjQHRocmVhZC52MiJ9"
        "&deeplinkId=d1&lightExperience=true",
        "https://teams.microsoft.com/",
    ],
)
def test_other_teams_urls_open_as_given(url):
    assert web_client_url(url) == url
    assert resolve(url, "teams", allowed_hosts=frozenset()).url == url


def test_rewrite_is_idempotent():
    once = web_client_url("https://teams.live.com/meet/9312345678901?p=Zx9Yw8")
    assert web_client_url(once) == once


@pytest.mark.parametrize(
    "url",
    [
        "https://teams.microsoft.com.evil.com/meet/2345678901234?p=x",  # suffix lookalike
        "https://evilteams.microsoft.com/meet/2345678901234",  # not a listed host
        "https://teams.live.com.evil.com/meet/2345678901234",
        "https://xteams.live.com/meet/2345678901234",
        "https://microsoft.com/meet/2345678901234",
        "https://teams.microsoft.us.evil.com/meet/1",
        "https://evil.com/teams.microsoft.com/meet/2345678901234",
        "https://user@teams.microsoft.com/meet/2345678901234",  # userinfo
        "https://teams.microsoft.com@evil.com/meet/2345678901234",
        "http://teams.microsoft.com/meet/2345678901234?p=x",  # http
        "https://teams.microsoft.com:8443/meet/2345678901234",  # odd port
        "https://52.112.0.1/meet/2345678901234",  # IP literals
        "https://[2603:1063::1]/meet/2345678901234",
        "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "javascript:alert(1)",
        "file:///etc/passwd",
    ],
)
def test_lookalikes_and_unsafe_urls_are_rejected(url, monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    with pytest.raises(InvalidUrl):
        resolve(url, "teams")


def test_allowed_hosts_open_replica_urls_as_given():
    url = "http://127.0.0.1:8123/meet/2345678901234?p=abc"
    resolved = resolve(url, "teams", allowed_hosts=frozenset({"127.0.0.1:8123"}))
    assert resolved.url == url
    assert "abc" not in resolved.public_url


@pytest.mark.parametrize(
    ("url", "passcode", "expected"),
    [
        (
            "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/123?anon=true",
            "s3cr&t",
            "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/123?p=s3cr%26t&anon=true",
        ),
        ("http://127.0.0.1:9/meet/123", "pw", "http://127.0.0.1:9/meet/123?p=pw"),
        ("http://127.0.0.1:9/meet/123?x=1", "pw", "http://127.0.0.1:9/meet/123?p=pw&x=1"),
        # the link's own passcode wins; meetup-join links carry none
        ("https://teams.live.com/meet/123?p=link", "pw", "https://teams.live.com/meet/123?p=link"),
        (
            f"https://teams.microsoft.com/l/meetup-join/{THREAD}/0",
            "pw",
            f"https://teams.microsoft.com/l/meetup-join/{THREAD}/0",
        ),
        ("https://teams.live.com/meet/123", None, "https://teams.live.com/meet/123"),
    ],
)
def test_with_passcode(url, passcode, expected):
    assert with_passcode(url, passcode) == expected


def test_display_name():
    assert TeamsDriver.display_name("  Scribe   Bot ") == "Scribe Bot"
    swapped = teams_display_name("Acme Notetaker")
    assert swapped != "Acme Notetaker" and "notetaker" not in swapped.lower()
    assert len(swapped) == len("Acme Notetaker")


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"captcha": True}, Reason.CAPTCHA),
        ({"text": "Verify you’re a real person"}, Reason.CAPTCHA),
        ({"host": "login.microsoftonline.com"}, Reason.LOGIN_REQUIRED),
        ({"loginField": True}, Reason.LOGIN_REQUIRED),
        ({"text": "To join, sign in or use Teams on the web"}, Reason.LOGIN_REQUIRED),
        ({"retryTitle": "Sorry, but you were denied access to the meeting."}, Reason.DENIED),
        ({"text": "Your request to join was declined"}, Reason.DENIED),
        (
            {"text": "We couldn’t find a meeting matching this ID and passcode."},
            Reason.WRONG_PASSCODE,
        ),
        (
            {"text": "Looks like the meeting URL is incorrect. Please check the URL and try again"},
            Reason.MEETING_NOT_FOUND,
        ),
        ({"text": "Sorry, no one responded to your request"}, Reason.WAITING_ROOM_TIMEOUT),
    ],
)
def test_join_errors(state, reason):
    error = join_error(state)
    assert error is not None and error.reason is reason


def test_lobby_and_prejoin_are_not_errors():
    assert join_error({"text": "Someone will let you in soon"}) is None
    assert join_error({"text": "Choose your video and audio options Join now"}) is None


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # toasts / transient alerts with the controls still there are never an end
        ({"controls": True, "text": "Bob has been removed from the meeting."}, None),
        ({"controls": True, "retryTitle": "You’ve been removed from this meeting"}, None),
        # controls gone but nothing that says why: left to the (longer) controls-gone counter
        ({"controls": False, "text": "You’ve been removed from this meeting"}, None),
        (
            {"controls": False, "retryTitle": "You’ve been removed from this meeting"},
            Reason.REMOVED,
        ),
        ({"controls": False, "retryTitle": "Removed from the meeting"}, Reason.REMOVED),
        (
            {"controls": False, "endScreen": True, "endTitle": "The meeting has ended"},
            Reason.HOST_ENDED,
        ),
        ({"url": "https://teams.microsoft.com/v2/#/meetingended"}, Reason.HOST_ENDED),
        ({"url": "about:blank", "controls": False}, Reason.HOST_ENDED),
    ],
)
def test_end_signal(state, expected):
    signal = end_signal(state)
    assert (signal.reason if signal else None) is expected
