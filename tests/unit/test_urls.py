"""URL allow-list (contract 1 SSRF guard) and secret redaction."""

from urllib.parse import urlsplit

import pytest

from platforms.registry import resolve
from vp.errors import InvalidUrl
from vp.urls import parse_allowed_hosts, redact_url, url_secrets

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


# -- lookalikes and parser tricks (each one read differently by Chromium or not a meeting) --

ZOOM_ID = "81234567890"


@pytest.mark.parametrize(
    "url",
    [
        # userinfo: the real host is after the "@"
        f"https://zoom.us@evil.com/j/{ZOOM_ID}",
        f"https://zoom.us:443@evil.com/j/{ZOOM_ID}",
        f"https://us05web.zoom.us%40evil.com/j/{ZOOM_ID}",
        # suffix and prefix lookalikes
        f"https://zoom.us.evil.com/j/{ZOOM_ID}",
        f"https://evilzoom.us/j/{ZOOM_ID}",
        f"https://notzoom.com/j/{ZOOM_ID}",
        "https://app.chime.aws.evil.com/meetings/8123456789",
        "https://teams.microsoft.com.evil.com/l/meetup-join/19%3ameeting_x%40thread.v2/0",
        # IP literals, in every form Chromium reads as 127.0.0.1 or a metadata address
        f"https://127.0.0.1/j/{ZOOM_ID}",
        f"https://2130706433/j/{ZOOM_ID}",
        f"https://0x7f000001/j/{ZOOM_ID}",
        f"https://127.1/j/{ZOOM_ID}",
        f"https://0x7f.1/j/{ZOOM_ID}",
        f"https://0177.0.0.1/j/{ZOOM_ID}",
        f"https://[::1]/j/{ZOOM_ID}",
        f"https://[::ffff:127.0.0.1]/j/{ZOOM_ID}",
        f"https://[fe80::1%25eth0]/j/{ZOOM_ID}",
        f"https://169.254.169.254/j/{ZOOM_ID}",
        # other schemes, and plain http or odd ports to a platform
        f"javascript:alert(1)//zoom.us/j/{ZOOM_ID}",
        f"file:///zoom.us/j/{ZOOM_ID}",
        "data:text/html,<script>alert(1)</script>zoom.us",
        f"ftp://zoom.us/j/{ZOOM_ID}",
        f"wss://zoom.us/j/{ZOOM_ID}",
        f"http://zoom.us/j/{ZOOM_ID}",
        f"https://zoom.us:8443/j/{ZOOM_ID}",
        f"https://zoom.us:80/j/{ZOOM_ID}",
        # backslashes: Chromium reads https://evil.com\.zoom.us/ as host evil.com
        "https://evil.com\\.zoom.us/my/vanity",
        f"https://evil.com\\.zoom.us/j/{ZOOM_ID}",
        "https://evil.com\\.teams.microsoft.us/l/meetup-join/19%3ameeting_x%40thread.v2/0",
        "https://evil.com\\.chime.aws/meetings/8123456789",
        f"https:\\\\evil.com\\.zoom.us/j/{ZOOM_ID}",
        # percent-encoded and non-ASCII hosts (Chromium decodes and IDNA-maps them)
        "https://evil.com%2F.zoom.us/my/vanity",
        "https://%65vil.zoom.us/my/vanity",
        "https://evil.com%E3%80%82zoom.us/my/vanity",
        "https://evil.com\u3002zoom.us/my/vanity",
        f"https://zoom.us\u3002evil.com/j/{ZOOM_ID}",
        f"https://\uff5aoom.us/j/{ZOOM_ID}",
        f"https://z\u043eom.us/j/{ZOOM_ID}",  # Cyrillic o
        # labels Chromium keeps but DNS has no use for
        f"https://a..zoom.us/j/{ZOOM_ID}",
        f"https://-.zoom.us/j/{ZOOM_ID}",
        f"https://*.zoom.us/j/{ZOOM_ID}",
        f"https://_x.zoom.us/j/{ZOOM_ID}",
        # whitespace and control characters (browsers strip tabs and newlines inside URLs)
        f"https://evil.com\t.zoom.us/j/{ZOOM_ID}",
        f"https://zoom.us/j/\n{ZOOM_ID}",
        f"https://zoom.us/j/{ZOOM_ID}\x7f",
        # fragment and query tricks
        "https://evil.com#.zoom.us/j/1",
        "https://evil.com?.zoom.us/j/1",
    ],
)
def test_lookalikes_and_tricks_are_rejected(url, monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    with pytest.raises(InvalidUrl):
        resolve(url)
    for platform in ("zoom", "teams", "chime", "webex"):
        with pytest.raises(InvalidUrl):
            resolve(url, platform)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (f"HTTPS://US05WEB.ZOOM.US/j/{ZOOM_ID}", "app.zoom.us"),  # case is normalised
        (f"https://zoom.us./j/{ZOOM_ID}", "app.zoom.us"),  # the trailing dot is the same host
        (f"https://us05web.zoom.us:443/j/{ZOOM_ID}", "app.zoom.us"),
        ("https://app.chime.aws/meetings/8123456789", "app.chime.aws"),
    ],
)
def test_equivalent_spellings_of_allowed_hosts_are_accepted(url, host, monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    meeting = resolve(url)
    assert urlsplit(meeting.url).hostname == host


@pytest.mark.parametrize(
    "url",
    [
        "http://127.1:8000/audiobridgetest.html",
        "http://2130706433:8000/audiobridgetest.html",
        "http://0x7f.0.0.1:8000/audiobridgetest.html",
        "http://127.0.0.01:8000/audiobridgetest.html",
        "http://localhost:8000/audiobridgetest.html",
        "http://127.0.0.1:8000\\@evil.example/audiobridgetest.html",
        "http://127.0.0.1:8000%2F@evil.example/audiobridgetest.html",
    ],
)
def test_operator_hosts_match_exactly(url):
    with pytest.raises(InvalidUrl):
        resolve(url, allowed_hosts=frozenset({"127.0.0.1:8000"}))


def test_operator_hosts_accept_canonical_forms():
    extra = frozenset({"127.0.0.1:8000", "[::1]:8000", "rooms.example:443", "localhost:9000"})
    assert resolve("http://127.0.0.1.:8000/audiobridgetest.html", allowed_hosts=extra)
    assert resolve("http://[::1]:8000/audiobridgetest.html", allowed_hosts=extra)
    assert resolve("https://rooms.example/audiobridgetest.html", allowed_hosts=extra)
    assert resolve("http://LOCALHOST:9000/audiobridgetest.html", allowed_hosts=extra)


def test_navigation_allow_list_of_a_resolved_meeting(monkeypatch):
    monkeypatch.delenv("VP_ALLOWED_HOSTS", raising=False)
    zoom = resolve(f"https://us05web.zoom.us/j/{ZOOM_ID}?pwd=abc")
    assert zoom.allows("https://app.zoom.us/wc/81234567890/join")
    assert zoom.allows("https://zoom.us/signin")  # the driver reports login-required
    for url in (
        "https://evil.com/",
        "http://app.zoom.us/wc/1/join",
        "https://169.254.169.254/latest/meta-data/",
        "https://evil.com\\.zoom.us/",
        "file:///etc/passwd",
        "https://login.microsoftonline.com/",  # not Zoom's
    ):
        assert not zoom.allows(url), url
    teams = resolve("https://teams.microsoft.com/v2/?meetingjoin=true#/meet/4123456789012")
    assert teams.allows("https://login.microsoftonline.com/common/oauth2/authorize")
    assert not teams.allows("https://login.microsoftonline.com.evil.com/")
    janus = resolve(ROOM, allowed_hosts=frozenset({"127.0.0.1:8000"}))
    assert janus.allows("http://127.0.0.1:8000/other.html")
    assert not janus.allows("http://127.0.0.1:8001/")
    assert not janus.allows("http://localhost:8000/")


def test_url_secrets_are_the_secret_query_values():
    assert url_secrets(f"https://zoom.us/j/{ZOOM_ID}?pwd=Secr3tPwd&uname=Bob") == ["Secr3tPwd"]
    teams = "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/4123?p=TeamsPass9&anon=true"
    assert url_secrets(teams) == ["TeamsPass9"]
    assert url_secrets("https://app.chime.aws/meetings/8123456789") == []


def test_unknown_query_parameters_are_secret_by_default():
    """An allow-list: Zoom's host start token (zak) or an OAuth access_token is masked in
    every public URL and registered for scrubbing, though no deny-list names them."""
    from platforms.registry import resolve

    url = (
        f"https://us05web.zoom.us/j/{ZOOM_ID}?pwd=Secr3tPwd&zak=ZakHostStartTok"
        "&access_token=AccTok-987&uname=Bob"
    )
    red = redact_url(url)
    for secret in ("Secr3tPwd", "ZakHostStartTok", "AccTok-987"):
        assert secret not in red
    assert "uname=Bob" in red  # a known public parameter stays
    assert sorted(url_secrets(url)) == ["AccTok-987", "Secr3tPwd", "ZakHostStartTok"]
    meeting = resolve(url, allowed_hosts=frozenset())
    assert "ZakHostStartTok" not in meeting.public_url
    assert "AccTok-987" not in meeting.public_url
    replica = "http://127.0.0.1:8123/j/1?zak=ZakHostStartTok&access_token=AccTok-987"
    opened = resolve(replica, "zoom", allowed_hosts=frozenset({"127.0.0.1:8123"}))
    assert opened.url == replica  # the browser still opens it as given
    assert "ZakHostStartTok" not in opened.public_url and "AccTok-987" not in opened.public_url
    teams = "https://teams.microsoft.com/v2/?meetingjoin=true#/meet/4123?p=P4ss&sig=S1gnature"
    assert "S1gnature" not in redact_url(teams) and "meetingjoin=true" in redact_url(teams)
