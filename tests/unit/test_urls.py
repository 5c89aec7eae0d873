"""URL allow-list (contract 1 SSRF guard) and secret redaction."""

import pytest

from platforms.registry import resolve
from vp.errors import InvalidUrl
from vp.urls import parse_allowed_hosts, redact_url

ROOM = "http://127.0.0.1:8000/audiobridgetest.html?room=1234"


def test_allowed_host_opens_as_given():
    meeting = resolve(ROOM, allowed_hosts=frozenset({"127.0.0.1:8000"}))
    assert meeting.platform == "janus"
    assert meeting.url == ROOM


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001/audiobridgetest.html",  # other port
        "http://user@127.0.0.1:8000/audiobridgetest.html",  # userinfo
        "http://127.0.0.1:8000@evil.example/audiobridgetest.html",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://127.0.0.1:8000/audiobridgetest.html",
        "http://169.254.169.254/latest/meta-data/audiobridgetest.html",
        "http://[::1]:8000/audiobridgetest.html",
        "",
        "http:///audiobridgetest.html",
        "http://127.0.0.1:8000/audio bridge.html",
        "http://127.0.0.1:99999/audiobridgetest.html",
    ],
)
def test_rejected(url):
    with pytest.raises(InvalidUrl):
        resolve(url, allowed_hosts=frozenset({"127.0.0.1:8000"}))


def test_not_allowed_without_allowed_hosts(monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    with pytest.raises(InvalidUrl, match="not allowed"):
        resolve(ROOM)
    monkeypatch.setenv("VP_ALLOWED_HOSTS", "127.0.0.1:8000")
    assert resolve(ROOM).url == ROOM


def test_unknown_platform_and_uninferable():
    with pytest.raises(InvalidUrl, match="unknown platform"):
        resolve(ROOM, "skype", allowed_hosts=frozenset({"127.0.0.1:8000"}))
    with pytest.raises(InvalidUrl, match="infer"):
        resolve("http://127.0.0.1:8000/other.html", allowed_hosts=frozenset({"127.0.0.1:8000"}))


def test_parse_allowed_hosts():
    assert parse_allowed_hosts(" A.example:80, b.example ,") == {"a.example:80", "b.example"}
    assert parse_allowed_hosts(None) == frozenset()


def test_redact_url_masks_secrets():
    url = "https://us05web.zoom.us/j/123?pwd=SECRETTOKEN&uname=x#frag"
    red = redact_url(url)
    assert "SECRETTOKEN" not in red
    assert "pwd=%2A%2A%2A" in red and "frag" not in red


def test_redact_url_keeps_fragment_route_but_masks_its_secrets():
    url = "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/4123?p=S3cretPass&anon=true"
    red = redact_url(url)
    assert "S3cretPass" not in red
    assert red.endswith("#/meet/4123?p=%2A%2A%2A&anon=true")
    assert "frag" not in redact_url("https://x.example/a#frag")
