"""Every platform's decisions, replayed from page snapshots recorded from the replicas and a
real Janus room (tests/unit/snapshots/record.py): join state, refusals with their contract
reason, the end signals, the roster, the speaker, chat lines and "alone"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from platforms.base import MeetingContext, MeetingOver, Phase, Refused
from platforms.chime import decisions as chime
from platforms.janus import decisions as janus
from platforms.meet import decisions as meet
from platforms.teams import decisions as teams
from platforms.webex import decisions as webex
from platforms.zoom import decisions as zoom
from vp.lifecycle import Reason

SNAPSHOTS = Path(__file__).parent / "snapshots"


def snapshots(platform: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SNAPSHOTS / f"{platform}.json").read_text())
    return data


ZOOM = snapshots("zoom")
TEAMS = snapshots("teams")
CHIME = snapshots("chime")
JANUS = snapshots("janus")
WEBEX = snapshots("webex")
MEET = snapshots("meet")

REFUSALS = [
    ("join_denied", Reason.DENIED),
    ("join_not_found", Reason.MEETING_NOT_FOUND),
    ("join_login_required", Reason.LOGIN_REQUIRED),
    ("join_captcha", Reason.CAPTCHA),
]


def ctx(url: str = "") -> MeetingContext:
    """The VP "Scribe", admitted at ``url``."""
    return MeetingContext("Scribe", frozenset({"Scribe"}), url)


def reason_of(state: Any) -> Reason | None:
    return state.reason if isinstance(state, Refused | MeetingOver) else None


# -- Zoom ---------------------------------------------------------------------------------
def test_zoom_join_states():
    assert zoom.join_state(ZOOM["join_prejoin"]) is Phase.PREJOIN
    assert zoom.join_state(ZOOM["join_lobby"]) is Phase.LOBBY
    assert zoom.join_state(ZOOM["join_admitted"]) is Phase.ADMITTED


@pytest.mark.parametrize(("name", "reason"), REFUSALS)
def test_zoom_refusals(name, reason):
    assert reason_of(zoom.join_state(ZOOM[name])) is reason


def test_zoom_wrong_passcode_is_a_verdict_only_when_new_or_outlasting_the_retry():
    snap = ZOOM["join_wrong_passcode"]
    assert zoom.join_state(snap) is Phase.PREJOIN  # the driver retries with its own passcode
    assert reason_of(zoom.passcode_rejected(snap, since_submit=0.5)) is Reason.WRONG_PASSCODE
    answered = {**snap, "pwdError": {"marked": True}}
    assert zoom.passcode_rejected(answered, since_submit=1.0) is None
    assert reason_of(zoom.passcode_rejected(answered, since_submit=6.0)) is Reason.WRONG_PASSCODE


def test_zoom_meeting():
    snap = ZOOM["meeting"]
    here = ctx(snap["url"])
    assert zoom.end_signal(snap, here) is None and zoom.gone_signal(snap) is None
    others = zoom.others(snap, here)
    assert others == ("Alice", "Bob")
    assert zoom.speaker(snap, here) in ("Alice", "Bob")
    assert zoom.alone(snap, others) is False
    lines = zoom.chat_lines(snap, here)
    assert [(x.sender, x.text, x.mine) for x in lines] == [
        ("Bob", "Bob was here", False),
        ("Alice", "hello from Alice", False),
        ("You", "hi from the VP", True),
    ]
    assert len({x.key for x in lines}) == 3
    # Another host or the leave page: the page left the meeting.
    assert reason_of(zoom.end_signal(snap, ctx("https://zoom.example/wc/1/join"))) is (
        Reason.HOST_ENDED
    )
    left = {**snap, "url": "https://a/wc/leave"}
    assert reason_of(zoom.end_signal(left, ctx("https://a/wc/1/join"))) is Reason.HOST_ENDED


def test_zoom_ends_and_alone():
    ended, removed, alone = ZOOM["meeting_ended"], ZOOM["meeting_removed"], ZOOM["meeting_alone"]
    here = ctx(ended["url"])
    assert reason_of(zoom.end_signal(ended, here)) is Reason.HOST_ENDED
    assert reason_of(zoom.end_signal(removed, here)) is Reason.REMOVED
    assert reason_of(zoom.gone_signal(removed)) is Reason.REMOVED
    assert zoom.end_signal(alone, here) is None
    assert zoom.speaker(alone, here) is None, "the VP is never the speaker"
    assert zoom.others(alone, here) == ()
    assert zoom.alone(alone, ()) is True


def test_zoom_housekeeping_one_click_per_poll():
    snap = ZOOM["meeting"]
    assert zoom.housekeeping(snap, since_admitted=10) is None
    assert zoom.housekeeping({**snap, "dismiss": True, "chatOpen": False}, 10) == "dismiss"
    needs_audio = {**snap, "audioLabel": "join audio"}
    assert zoom.housekeeping(needs_audio, since_admitted=0.5) is None, "the client may join"
    assert zoom.housekeeping(needs_audio, since_admitted=3) == "join_audio"
    assert zoom.housekeeping({**snap, "audioLabel": "mute my microphone"}, 3) == "stay_muted"
    assert zoom.housekeeping({**snap, "chatOpen": False}, 3) == "open_chat"


# -- Teams --------------------------------------------------------------------------------
def teams_state(snap: Any, **context: Any) -> Any:
    context = {"was_in_lobby": False, "disabled_polls": 0, "restart": False, **context}
    return teams.join_state(snap, **context)


def test_teams_join_states():
    assert teams_state(TEAMS["join_prejoin"]) is Phase.PREJOIN
    assert teams_state(TEAMS["join_lobby"]) is Phase.LOBBY
    assert teams_state(TEAMS["join_admitted"]) is Phase.ADMITTED
    # The Join button disabled for long after a click, no lobby text: a lobby all the same.
    prejoin = TEAMS["join_prejoin"]
    assert teams_state(prejoin, disabled_polls=teams.LOBBY_DISABLED_POLLS) is Phase.LOBBY
    # Back from the lobby to an enabled Join button: the lobby dropped the VP.
    dropped = {**prejoin, "join": {"disabled": False}, "inMeeting": False}
    assert reason_of(teams_state(dropped, was_in_lobby=True)) is Reason.DENIED
    # The post-Join modal keeps the Join button behind it: not a lobby, not admitted.
    assert teams_state({**TEAMS["join_lobby"], "avModal": True}) is Phase.PREJOIN


@pytest.mark.parametrize(
    ("name", "reason"), [*REFUSALS, ("join_wrong_passcode", Reason.WRONG_PASSCODE)]
)
def test_teams_refusals(name, reason):
    assert reason_of(teams_state(TEAMS[name])) is reason


def test_teams_meeting():
    snap = TEAMS["meeting"]
    own = ctx(snap["url"])
    assert teams.end_signal(snap) is None and teams.gone_signal(snap) is None
    others = teams.others(snap, own)
    assert set(others) == {"Alice", "Bob"}
    assert teams.speaker(snap, own) in ("Alice", "Bob")
    assert teams.alone(snap, others) is False
    lines = teams.chat_lines(snap, own)
    incoming = [(x.sender, x.text) for x in lines if not x.mine]
    assert ("Bob", "Bob was here") in incoming and ("Alice", "hello from Alice") in incoming
    assert [x.text for x in lines if x.mine] == ["hi from the VP"]


def test_teams_ends_and_alone():
    assert reason_of(teams.end_signal(TEAMS["meeting_ended"])) is Reason.HOST_ENDED
    assert reason_of(teams.end_signal(TEAMS["meeting_removed"])) is Reason.REMOVED
    alone = TEAMS["meeting_alone"]
    assert teams.end_signal(alone) is None
    assert teams.others(alone, ctx()) == ()
    assert teams.alone(alone, ()) is True
    # Controls gone without an end screen: the longer "gone" wait, removal read from the text.
    assert reason_of(teams.gone_signal({"controls": False})) is Reason.HOST_ENDED
    removed_text = {"controls": False, "text": "You’ve been removed from this meeting"}
    assert reason_of(teams.gone_signal(removed_text)) is Reason.REMOVED


# -- Chime --------------------------------------------------------------------------------
def chime_state(snap: Any, passcode_sent: bool = False, has_passcode: bool = False) -> Any:
    return chime.join_state(snap, passcode_sent=passcode_sent, has_passcode=has_passcode)


def test_chime_join_states():
    assert chime_state(CHIME["join_prejoin"]) is Phase.PREJOIN
    assert chime_state(CHIME["join_lobby"]) is Phase.LOBBY
    assert chime_state(CHIME["join_admitted"]) is Phase.ADMITTED


@pytest.mark.parametrize(("name", "reason"), REFUSALS)
def test_chime_refusals(name, reason):
    assert reason_of(chime_state(CHIME[name])) is reason


def test_chime_moderated_meeting_takes_the_passcode_then_waits():
    waiting = {**CHIME["join_lobby"], "text": "The meeting won’t start until a moderator joins."}
    assert chime_state(waiting) is Phase.LOBBY
    assert chime_state(waiting, has_passcode=True) is Phase.PREJOIN
    assert chime_state(waiting, passcode_sent=True, has_passcode=True) is Phase.LOBBY
    refused = {**waiting, "text": "Incorrect moderator passcode. Try again."}
    assert reason_of(chime_state(refused, passcode_sent=True)) is Reason.WRONG_PASSCODE


def test_chime_meeting():
    snap = CHIME["meeting"]
    here = ctx(snap["url"])
    assert chime.end_signal(snap, here) is None and chime.gone_signal(snap) is None
    others = chime.others(snap, here)
    assert others is not None and set(others) == {"Alice", "Bob"}
    assert chime.speaker(snap, here) in ("Alice", "Bob")
    assert chime.alone(snap, others) is False
    lines = chime.chat_lines(snap, here)
    incoming = [(x.sender, x.text) for x in lines if not x.mine]
    assert ("Bob", "Bob was here") in incoming and ("Alice", "hello from Alice") in incoming
    assert all(x.sender != chime.SYSTEM_SENDER for x in lines)
    elsewhere = ctx("https://elsewhere.example/meetings/1")
    assert reason_of(chime.end_signal(snap, elsewhere)) is Reason.HOST_ENDED


def test_chime_ends_and_alone():
    here = ctx(CHIME["meeting"]["url"])
    assert reason_of(chime.end_signal(CHIME["meeting_ended"], here)) is Reason.HOST_ENDED
    assert reason_of(chime.end_signal(CHIME["meeting_removed"], here)) is Reason.REMOVED
    alone = CHIME["meeting_alone"]
    assert chime.end_signal(alone, here) is None
    assert chime.alone(alone, chime.others(alone, here)) is True
    # Roster closed: the "Present" count (the VP included) still tells.
    assert chime.alone({**alone, "present": None, "presentCount": 1}, None) is True
    assert chime.alone({**alone, "present": None, "presentCount": 3}, None) is None


# -- Janus --------------------------------------------------------------------------------
def test_janus_join_states():
    assert janus.join_state(JANUS["join_prejoin"], registered=False) is Phase.PREJOIN
    assert janus.join_state(JANUS["join_admitted"], registered=True) is Phase.ADMITTED
    refused = janus.join_state(JANUS["join_not_found"], registered=True)
    assert reason_of(refused) is Reason.MEETING_NOT_FOUND


def test_janus_meeting():
    snap = JANUS["meeting"]
    assert janus.end_signal(snap) is None and janus.gone_signal(snap) is None
    assert snap["names"] == ["Alice"] and janus.speaker(snap) == "Alice"
    assert janus.speaker({**snap, "names": ["Alice", "Bob"]}) is None, "no speaker display"
    ended = JANUS["meeting_ended"]
    over = janus.end_signal(ended) or janus.gone_signal(ended)
    assert over is not None and over.reason in (Reason.HOST_ENDED, Reason.REMOVED)
    destroyed = {**snap, "dialog": "The room has been destroyed", "inRoom": False}
    assert reason_of(janus.end_signal(destroyed)) is Reason.HOST_ENDED
    assert reason_of(janus.gone_signal(janus.NO_ROOM)) is Reason.REMOVED


# -- Webex --------------------------------------------------------------------------------
def webex_state(snap: Any, *, passcode_sent: bool = True, has_passcode: bool = True) -> Any:
    return webex.join_state(snap, passcode_sent=passcode_sent, has_passcode=has_passcode)


def test_webex_join_states():
    assert webex_state(WEBEX["join_prejoin"]) is Phase.PREJOIN
    assert webex_state(WEBEX["join_lobby"]) is Phase.LOBBY
    assert webex_state(WEBEX["join_admitted"]) is Phase.ADMITTED
    # The lobby is read in the client frame (cross-origin), not in the meeting page.
    assert WEBEX["join_lobby"]["client"]["lobby"] and WEBEX["join_lobby"]["top"]["clientFrame"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("join_denied", Reason.DENIED),
        ("join_locked", Reason.DENIED),
        ("join_not_found", Reason.MEETING_NOT_FOUND),
        ("join_captcha", Reason.CAPTCHA),
        ("join_wrong_passcode", Reason.WRONG_PASSCODE),
    ],
)
def test_webex_refusals(name, reason):
    assert reason_of(webex_state(WEBEX[name])) is reason


def test_webex_password_page_wants_a_password_before_it_is_a_verdict():
    wrong = WEBEX["join_wrong_passcode"]
    assert wrong["client"]["password"] and wrong["client"]["passwordError"]
    fresh = {**wrong, "client": {**wrong["client"], "passwordError": False, "text": ""}}
    assert webex_state(fresh, passcode_sent=False) is Phase.PREJOIN  # type it first
    no_password = webex_state(fresh, passcode_sent=False, has_passcode=False)
    assert reason_of(no_password) is Reason.WRONG_PASSCODE


def test_webex_meeting():
    snap = WEBEX["meeting"]
    here = ctx(snap["top"]["url"])
    assert webex.end_signal(snap, here) is None and webex.gone_signal(snap) is None
    others = webex.others(snap, here)
    assert others is not None and set(others) == {"Alice", "Bob"}
    assert webex.speaker(snap, here) in ("Alice", "Bob")
    assert webex.alone(snap, others) is False
    lines = webex.chat_lines(snap, here)
    incoming = [(x.sender, x.text) for x in lines if not x.mine]
    assert ("Bob", "Bob was here") in incoming and ("Alice", "hello from Alice") in incoming
    assert [(x.sender, x.text) for x in lines if x.mine] == [("Scribe", "hi from the VP")]
    assert webex.speaker({**snap, "client": {**snap["client"], "speaker": "Scribe"}}, here) is None


def test_webex_enterprise_client():
    """The enterprise client (thinIframe): guest form, interstitial with #audioControlButton and
    the STOP_VIDEO button, lobby, admitted by its data-doi chat toggle, its textarea chat panel
    and .videoitem-* speaker tile, the end screen."""
    guest = WEBEX["enterprise_guest_form"]
    assert guest["client"]["nameInput"] and guest["client"]["emailInput"]
    assert webex_state(guest, passcode_sent=True) is Phase.PREJOIN
    interstitial = WEBEX["enterprise_interstitial"]
    assert webex_state(interstitial) is Phase.PREJOIN
    assert webex.mic_on(interstitial["client"]) and webex.camera_on(interstitial["client"])
    assert webex_state(WEBEX["enterprise_lobby"]) is Phase.LOBBY
    admitted = WEBEX["enterprise_admitted"]
    assert webex_state(admitted) is Phase.ADMITTED
    assert not webex.mic_on(admitted["client"]) and not webex.camera_on(admitted["client"])
    snap = WEBEX["enterprise_meeting"]
    here = ctx(snap["top"]["url"])
    assert snap["client"]["chatOpen"]
    assert webex.in_meeting(snap) and webex.end_signal(snap, here) is None
    assert webex.speaker(snap, here) in ("Alice", "Bob")
    lines = webex.chat_lines(snap, here)
    assert ("Bob", "Bob was here") in [(x.sender, x.text) for x in lines if not x.mine]
    assert [(x.sender, x.text) for x in lines if x.mine] == [("Scribe", "hi from the VP")]
    ended = WEBEX["enterprise_meeting_ended"]
    assert reason_of(webex.end_signal(ended, here)) is Reason.HOST_ENDED


def test_webex_chat_labels():
    assert webex.sender_of("from Alice to everyone  3:31 PM") == "Alice"
    assert webex.sender_of("from Mary Ann Lee to Everyone 10:02") == "Mary Ann Lee"
    assert webex.sender_of("from Bob") == "Bob"


def test_webex_ends_and_alone():
    here = ctx(WEBEX["meeting"]["top"]["url"])
    assert reason_of(webex.end_signal(WEBEX["meeting_ended"], here)) is Reason.HOST_ENDED
    assert reason_of(webex.end_signal(WEBEX["meeting_removed"], here)) is Reason.REMOVED
    alone = WEBEX["meeting_alone"]
    assert webex.end_signal(alone, here) is None
    assert webex.alone(alone, webex.others(alone, here)) is True
    # Panel closed: "Participants (N)" (the VP included) still tells.
    closed = {**alone["client"], "roster": None}
    assert webex.alone({**alone, "client": {**closed, "count": 1}}, None) is True
    assert webex.alone({**alone, "client": {**closed, "count": None}}, None) is None
    # The client frame gone: the meeting UI is missing.
    assert reason_of(webex.gone_signal({**alone, "client": None})) is Reason.HOST_ENDED


def test_webex_prompts_to_answer():
    client = WEBEX["join_prejoin"]["client"]
    assert webex.ack_button({**client, "dialogButtons": []}) is None
    prompt = {**client, "dialogButtons": ["Continue without microphone and camera"]}
    assert webex.ack_button(prompt) == "Continue without microphone and camera"
    assert webex.ack_button({**client, "dialogButtons": ["Cancel", "Leave meeting"]}) is None


def test_webex_microphone_and_camera_states():
    client = WEBEX["meeting"]["client"]
    assert not webex.mic_on(client) and not webex.camera_on(client), "the VP joined muted"
    assert webex.mic_on({**client, "mic": "Mute"}) and webex.mic_on({**client, "mic": "Mute me"})
    assert not webex.mic_on({**client, "mic": "Unmute"})
    assert webex.camera_on({**client, "camera": "Stop video"})
    assert not webex.camera_on({**client, "camera": "Start video"})


# -- Google Meet ----------------------------------------------------------------------------
def test_meet_join_states():
    assert meet.join_state(MEET["join_prejoin"]) is Phase.PREJOIN
    assert meet.join_state(MEET["join_lobby"]) is Phase.LOBBY
    assert meet.join_state(MEET["join_admitted"]) is Phase.ADMITTED


@pytest.mark.parametrize(("name", "reason"), [*REFUSALS, ("join_blocked", Reason.BLOCKED)])
def test_meet_refusals(name, reason):
    assert reason_of(meet.join_state(MEET[name])) is reason


def test_meet_the_lobby_is_not_the_call_though_it_shows_leave_call():
    lobby = MEET["join_lobby"]
    assert lobby["leaveCall"] and not meet.admitted(lobby), "the effects tile is not a person"
    # Lobby texts win over anything that looks like the call.
    assert meet.join_state({**lobby, "captions": True}) is Phase.LOBBY
    waiting = {**MEET["join_prejoin"], "join": None, "text": "Waiting for the host to join"}
    assert meet.join_state(waiting) is Phase.LOBBY, "a meeting not started yet is a wait"
    # The lobby's own "Return to home screen" is not a refusal (Vexa#471).
    assert "Return to home screen" in lobby["text"]


def test_meet_the_sign_in_modal_is_not_a_lobby():
    text = "Sign in with your Google account\nInstead of waiting to be let in, sign in\nGot it"
    snap = {**MEET["join_prejoin"], "text": text, "dialog": {"kind": "dialog", "label": "Got it"}}
    assert meet.join_state(snap) is Phase.PREJOIN
    assert meet.join_state({**snap, "dialog": None}) is Phase.PREJOIN


def test_meet_a_notice_after_admission_is_answered_first():
    notice = {"kind": "notice", "label": "Join now"}
    assert meet.join_state({**MEET["join_admitted"], "dialog": notice}) is Phase.PREJOIN


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("You can't join this video call", Reason.BLOCKED),
        ("You can\u2019t join this meeting", Reason.BLOCKED),
        ("There is a problem connecting to this video call", Reason.BLOCKED),
        ("Your request to join was denied", Reason.DENIED),
        ("You weren\u2019t allowed to join this call", Reason.DENIED),
        ("No one responded to your request to join the call", Reason.WAITING_ROOM_TIMEOUT),
        ("Invalid video call name.", Reason.MEETING_NOT_FOUND),
        ("Your meeting code has expired", Reason.MEETING_NOT_FOUND),
        ("The meeting code you entered doesn\u2019t work", Reason.MEETING_NOT_FOUND),
    ],
)
def test_meet_refusal_texts(text, reason):
    assert reason_of(meet.join_state({**MEET["join_denied"], "text": text})) is reason


def test_meet_refusal_hosts():
    base = MEET["join_denied"]
    signin = {**base, "host": "accounts.google.com", "text": "Sign in"}
    assert reason_of(meet.join_state(signin)) is Reason.LOGIN_REQUIRED
    product = {**base, "host": "workspace.google.com", "text": "Google Meet"}
    assert reason_of(meet.join_state(product)) is Reason.BLOCKED
    left = {**base, "text": "You left the meeting\nReturn to home screen"}
    assert meet.join_state(left, was_in_lobby=False) is Phase.PREJOIN
    assert reason_of(meet.join_state(left, was_in_lobby=True)) is Reason.DENIED


def test_meet_meeting():
    snap = MEET["meeting"]
    here = ctx(snap["url"])
    assert meet.end_signal(snap, here) is None and meet.gone_signal(snap) is None
    assert meet.in_meeting(snap)
    others = meet.others(snap, here)
    assert others == ("Alice", "Bob")
    assert meet.speaker(snap, here) == "Alice"
    assert meet.alone(snap, others) is False
    lines = meet.chat_lines(snap, here)
    assert [(x.sender, x.text, x.mine) for x in lines] == [
        ("Bob", "Bob was here", False),
        ("Scribe", "hi from the VP", True),
        ("Alice", "hello from Alice", False),
    ]
    assert len({x.key for x in lines}) == 3, "keyed by data-message-id"
    assert meet.speaker({**snap, "speaker": "Scribe"}, here) is None


def test_meet_ends_and_alone():
    here = ctx(MEET["meeting"]["url"])
    assert reason_of(meet.end_signal(MEET["meeting_ended"], here)) is Reason.HOST_ENDED
    assert reason_of(meet.end_signal(MEET["meeting_removed"], here)) is Reason.REMOVED
    assert reason_of(meet.gone_signal(MEET["meeting_ended"])) is Reason.HOST_ENDED
    off = {**MEET["meeting"], "host": "workspace.google.com"}
    assert reason_of(meet.end_signal(off, here)) is Reason.HOST_ENDED
    snap = MEET["meeting_alone"]
    others = meet.others(snap, here)
    assert others == () and meet.alone(snap, others) is True
    assert meet.alone({**snap, "count": 2}, others) is False, "the avatar count says someone"


# -- refusals in the platform's own words (issue 17 part 3) --------------------------------
@pytest.mark.parametrize("platform", ["zoom", "teams", "chime", "webex", "meet"])
def test_every_refusal_has_a_detail_and_the_text_ones_quote_the_platform(platform):
    data, decide = {
        "zoom": (ZOOM, zoom.join_state),
        "teams": (TEAMS, teams_state),
        "chime": (CHIME, chime_state),
        "webex": (WEBEX, webex_state),
        "meet": (MEET, meet.join_state),
    }[platform]
    refused = {n: decide(s) for n, s in data.items() if n.startswith("join_")}
    refused = {n: r for n, r in refused.items() if isinstance(r, Refused)}
    assert refused, "the recorded snapshots include refusals"
    for name, state in refused.items():
        assert state.detail.strip(), name
    # Denials and unknown meetings are words on the page: the detail carries them.
    for name in ("join_denied", "join_not_found"):
        if name in refused:
            assert " says \u201c" in refused[name].detail, (name, refused[name].detail)


def test_refusal_details_name_what_the_organiser_can_change():
    login = zoom.join_state(ZOOM["join_login_required"])
    assert "Sign in to join this meeting" in login.detail and "organiser can" in login.detail
    teams_login = teams_state(TEAMS["join_login_required"])
    assert "anonymous" in teams_login.detail and "organiser can" in teams_login.detail
    locked = webex_state(WEBEX["join_locked"])
    assert "The meeting is locked" in locked.detail and "unlock" in locked.detail
    blocked = meet.join_state(MEET["join_blocked"])
    assert "anonymous guests" in blocked.detail


def test_platform_said_quotes_the_matching_line_only():
    from platforms.toolkit import platform_said, refusal_detail

    text = "Menu\n  Meeting   not found \nHelp"
    assert platform_said(r"meeting not found|meeting\s+not\s+found", text) == "Meeting not found"
    assert platform_said(r"locked", text) == ""
    assert refusal_detail("x", "P", "", "") == "x"
    assert refusal_detail("x", "P", "y", "z") == "x; P says \u201cy\u201d; the organiser can z"


def test_the_lobby_is_described_in_the_platform_s_own_words():
    from platforms.chime.driver import ChimeDriver
    from platforms.meet.driver import MeetDriver
    from platforms.teams.driver import TeamsDriver
    from platforms.toolkit import platform_said
    from platforms.webex.decisions import TEXTS as WEBEX_TEXTS
    from platforms.webex.decisions import page_text
    from platforms.zoom.driver import ZoomDriver

    said = {
        "zoom": platform_said(ZoomDriver.lobby_said, ZOOM["join_lobby"]["text"]),
        "teams": platform_said(TeamsDriver.lobby_said, TEAMS["join_lobby"]["text"]),
        "chime": platform_said(ChimeDriver.lobby_said, CHIME["join_lobby"]["text"]),
        "meet": platform_said(MeetDriver.lobby_said, MEET["join_lobby"]["text"]),
        "webex": platform_said(WEBEX_TEXTS["lobby"], page_text(WEBEX["join_lobby"])),
    }
    assert all(said.values()), said
    assert all(len(words) <= 200 and "\n" not in words for words in said.values())
