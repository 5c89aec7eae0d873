"""The replica server: serves local replicas of meeting web clients, with a scenario controller.

One :class:`ReplicaServer` serves one platform's replica on 127.0.0.1, at the same URL paths
as the real web client (each replica lists its page routes in ``<platform>/routes.txt``:
``<path regex> <file>`` per line; the meeting id is the regex's first group). Tests (and
``vp demo --platform``) register a :class:`Scenario` per meeting and drive it through a
:class:`MeetingControl`. The replica page talks to the server under ``/__replica/``:

    GET  /__replica/static/<platform>/<file>        the replica's assets
    GET  /__replica/common/<file>                   assets shared by replicas (common/: the VP's
                                                    uplink, one mixed audio stream)
    GET  /__replica/m/<id>/scenario                 the scenario JSON
    GET  /__replica/m/<id>/commands?after=N         test → page commands after seq N
    POST /__replica/m/<id>/report                   page → test reports (JSON object)
    GET  /__replica/m/<id>/audio/<index>.wav        participant <index>'s tone signal (48 kHz)
    GET  /__replica/client-origin                   where the client frame is served from (Webex:
                                                    a second port, so the frame is cross-origin)
    GET  /__replica/camera-sender?m=<id>            the external camera sender page
    GET  /__replica/m/<id>/cameras                  its signalling: {session: {request, offer,
    POST /__replica/m/<id>/cameras/<session>/<kind>   answer}} (cameras.js, camera-sender.html)

Commands (``{"seq", "kind", ...}``): ``chat`` {sender, text}; ``end`` (host ends the
meeting); ``remove`` (the VP is removed); ``admit`` / ``deny`` (lobby decisions);
``leave`` {name} (a participant leaves); ``speak`` {name} (that participant speaks now);
``toast`` {text?, ...} (a transient alert that must not end the meeting) and ``flicker``
{ms|seconds} (the meeting UI briefly disappears, as during a reconnect), for debounce tests.
Reports (``{"kind", ...}``): ``chat`` {sender, text} (a message the VP posted, as the page
saw it); ``state`` {state} (``prejoin``, ``lobby``, ``joined``, ``left``, ``ended``…);
``speaker`` {name}; anything else is kept as is.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np
import soundfile as sf
from pydantic import BaseModel, Field

from vp.localmeeting.participant import synthesize_speech
from vp.signal import make_signal

REPLICAS_DIR = Path(__file__).resolve().parent
AUDIO_RATE = 48_000
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".wav": "audio/wav",
}


class ParticipantSpec(BaseModel):
    """A simulated participant: their name and the tone symbols they "say" (0–6, no repeats
    next to each other; see :mod:`vp.signal`), optionally preceded by espeak-ng speech."""

    name: str
    symbols: tuple[int, ...] = (0, 3, 1, 4, 2, 5)
    speech: str | None = None
    pause_s: float = Field(
        default=0.0, ge=0, le=30
    )  # silence after the tones, before the loop repeats
    # Capture health: the first this-many page loads get a silent track of the same length
    # (the indicator shows them speaking while their audio is silent); later loads (after the
    # VP reloads and rejoins) get the real one. A large number: silent for good.
    silent_loads: int = Field(default=0, ge=0)


# The web-client URL of a meeting on each replica (the path the real client uses).
WEB_CLIENT_PATHS = {
    "zoom": "/wc/{id}/join{q}",  # q: ?pwd=<passcode>
    "teams": "/v2/?meetingjoin=true#/meet/{id}{q}",  # q: ?p=<passcode>&anon=true
    "chime": "/meetings/{id}",
    "webex": "/replica/j.php?MTID={id}{q}",  # q: &pwd=<password>
    "meet": "/{id}{q}",  # meet.google.com/abc-defg-hij
}
# Replicas whose client runs in an iframe from a second origin (served on a second port), as
# the real client does: Webex's #unified-webclient-iframe is cross-origin to the meeting page.
CLIENT_ORIGIN_PLATFORMS = frozenset({"webex"})


class ChatLine(BaseModel):
    at_s: float  # seconds after the VP is admitted
    sender: str
    text: str


class Scenario(BaseModel):
    """What a replica meeting does. Times are seconds after the VP is admitted unless noted."""

    meeting_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    passcode: str | None = None  # the meeting's passcode; a different one is "wrong"
    not_found: bool = False  # the link is invalid / the meeting does not exist
    login_required: bool = False
    captcha: bool = False  # a bot wall / captcha after pressing Join
    waiting_room_s: float | None = None  # held in the waiting room/lobby this long
    deny: bool = False  # the lobby ends in denial instead of admission
    manual_admission: bool = False  # stay in the lobby until an admit/deny command
    locked: bool = False  # Webex: the meeting is locked (guests cannot get in)
    # Webex: newer j.php builds run the client in the main frame (preloader.html?…
    # runInOwnPage=true) instead of #unified-webclient-iframe.
    client_in_page: bool = False
    # Webex enterprise sites: the client frame is iframe[name="thinIframe"] (L-wx, AS) instead
    # of #unified-webclient-iframe, from the same second origin.
    thin_iframe: bool = False
    post_join_modal: bool = False  # Teams: "Continue without audio or video" after Join
    # Meet, Webex: the host muted everyone and does not let participants unmute themselves
    # (the client's unmute control shows a notice instead of unmuting).
    unmute_refused: bool = False
    participants: list[ParticipantSpec] = Field(default_factory=list)
    speak_turn_s: float = 3.0  # participants speak in turn, this long each, then repeat
    end_after_s: float | None = None
    remove_after_s: float | None = None
    everyone_leaves_after_s: float | None = None
    chat: list[ChatLine] = Field(default_factory=list)
    # Google Meet: "You can't join this video call" on this many join attempts (page loads of
    # one tab; a large number: always), and the variant with no <audio> elements.
    blocked_joins: int = Field(default=0, ge=0)
    audio_elements: bool = True
    # Realistic load: this many remote cameras (a moving canvas each, VP8) on the same loopback
    # peer connection as the meeting audio, rendered in <video> tiles (platforms/replicas/
    # cameras.js), in every replica.
    camera_streams: int = Field(default=0, ge=0, le=8)
    camera_size: tuple[int, int] = (1280, 720)
    camera_fps: int = Field(default=30, ge=1, le=60)
    # Where the cameras are encoded: "page" (the replica page's own loopback media server, in
    # the VP's browser) or "external": a sender page the test opens in ANOTHER browser
    # (/__replica/camera-sender?m=<id>), on a peer connection of their own, so a benchmark does
    # not count the encoders as the VP's.
    camera_sender: Literal["page", "external"] = "page"
    # And a screen share after the cameras, on the same path (camera_sender): a canvas of
    # slides whose text changes slowly, at a low frame rate, VP8 with contentHint "detail"
    # (cameras.js screen()), shown in a share tile.
    screen_share: bool = False
    screen_share_size: tuple[int, int] = (1920, 1080)
    screen_share_fps: int = Field(default=5, ge=1, le=30)


@dataclass
class MeetingControl:
    """The test side of one replica meeting: send commands, read what the page reported."""

    scenario: Scenario
    _lock: threading.Lock = field(default_factory=threading.Lock)
    commands: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    audio_loads: dict[int, int] = field(default_factory=dict)  # participant index -> fetches
    # External camera sender signalling: session -> {"request"|"offer"|"answer": JSON}.
    camera_signals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def audio_load(self, index: int) -> int:
        """Count one fetch of participant ``index``'s audio; returns how many came before."""
        with self._lock:
            before = self.audio_loads.get(index, 0)
            self.audio_loads[index] = before + 1
            return before

    def command(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self.commands.append({"seq": len(self.commands) + 1, "kind": kind, **fields})

    def chat_from(self, sender: str, text: str) -> None:
        self.command("chat", sender=sender, text=text)

    def end(self) -> None:
        self.command("end")

    def remove_vp(self) -> None:
        self.command("remove")

    def commands_after(self, after: int) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.commands if c["seq"] > after]

    def add_report(self, report: dict[str, Any]) -> None:
        report = {**report, "received_at": time.time()}
        with self._lock:
            self.reports.append(report)

    def reported(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.reports if r.get("kind") == kind]

    @property
    def vp_chat(self) -> list[str]:
        """Texts of the chat messages the VP posted, as the replica received them."""
        return [str(r.get("text", "")) for r in self.reported("chat")]

    @property
    def states(self) -> list[str]:
        return [str(r.get("state")) for r in self.reported("state")]


def load_routes(platform: str) -> list[tuple[re.Pattern[str], str]]:
    """``<platform>/routes.txt``: one ``<path regex> <file>`` per line (# comments)."""
    routes_file = REPLICAS_DIR / platform / "routes.txt"
    routes = []
    for line in routes_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, filename = line.split()
        routes.append((re.compile(pattern), filename))
    return routes


class ReplicaServer:
    """Serves one platform's replica on 127.0.0.1 (threads; start/stop are cheap and sync)."""

    def __init__(self, platform: str, port: int = 0, client_host: str = "127.0.0.1") -> None:
        """``client_host``: the host name the client frame's origin uses (Webex); "localhost"
        makes the frame cross-site as well as cross-origin (an out-of-process frame)."""
        self.platform = platform
        self.client_host = client_host
        self.root = REPLICAS_DIR / platform
        if not (self.root / "routes.txt").is_file():
            raise FileNotFoundError(f"no replica for {platform!r} in {REPLICAS_DIR}")
        self.routes = load_routes(platform)
        self.meetings: dict[str, MeetingControl] = {}
        self._audio_cache: dict[tuple[tuple[int, ...], str | None, float, bool], bytes] = {}
        self._audio_lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None
        # The client's own origin (another port), for clients framed cross-origin.
        self._client_httpd: ThreadingHTTPServer | None = None
        self._client_thread: threading.Thread | None = None
        if platform in CLIENT_ORIGIN_PLATFORMS:
            self._client_httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
            self._client_httpd.daemon_threads = True

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_base_url(self) -> str:
        """The origin the client frame is served from (the page's own for most replicas)."""
        if self._client_httpd is None:
            return self.base_url
        return f"http://{self.client_host}:{int(self._client_httpd.server_address[1])}"

    @property
    def allowed_host(self) -> str:
        """The ``VP_ALLOWED_HOSTS`` entries a VP needs to open this replica (with the client
        frame's origin where it has its own)."""
        hosts = [f"127.0.0.1:{self.port}"]
        if self._client_httpd is not None:
            hosts.append(f"{self.client_host}:{int(self._client_httpd.server_address[1])}")
        return ",".join(hosts)

    def meeting_url(self, meeting_id: str, passcode: str | None = None) -> str:
        """The URL a user's invite resolves to, for a meeting on this replica."""
        if self.platform == "zoom":
            query = f"?pwd={passcode}" if passcode else ""
        elif self.platform == "teams":
            query = f"?p={passcode}&anon=true" if passcode else "?anon=true"
        elif self.platform == "webex":
            query = f"&pwd={passcode}" if passcode else ""
        else:
            query = ""
        path = WEB_CLIENT_PATHS[self.platform].format(id=meeting_id, q=query)
        return f"{self.base_url}{path}"

    def add_meeting(self, scenario: Scenario) -> MeetingControl:
        control = MeetingControl(scenario)
        self.meetings[scenario.meeting_id] = control
        return control

    def start(self) -> ReplicaServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"replica-{self.platform}", daemon=True
        )
        self._thread.start()
        if self._client_httpd is not None:
            self._client_thread = threading.Thread(
                target=self._client_httpd.serve_forever,
                name=f"replica-{self.platform}-client",
                daemon=True,
            )
            self._client_thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        if self._client_httpd is not None:
            self._client_httpd.shutdown()
            self._client_httpd.server_close()
            if self._client_thread is not None:
                self._client_thread.join(5)

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def participant_wav(self, spec: ParticipantSpec, *, silent: bool = False) -> bytes:
        """The participant's audio: [speech, a pause,] their tone sequence[, a pause]; 48 kHz
        mono. The page loops it. ``silent``: zeros of the same length."""
        key = (tuple(spec.symbols), spec.speech, spec.pause_s, silent)
        with self._audio_lock:
            cached = self._audio_cache.get(key)
            if cached is None:
                parts = [make_signal(spec.symbols, AUDIO_RATE)]
                if spec.speech:
                    speech = synthesize_speech(spec.speech, sample_rate=AUDIO_RATE)
                    parts[:0] = [speech, np.zeros(AUDIO_RATE // 2, dtype=np.int16)]
                if spec.pause_s:
                    parts.append(np.zeros(round(spec.pause_s * AUDIO_RATE), dtype=np.int16))
                if silent:
                    parts = [np.zeros_like(part) for part in parts]
                buf = io.BytesIO()
                sf.write(buf, np.concatenate(parts), AUDIO_RATE, format="WAV", subtype="PCM_16")
                cached = self._audio_cache[key] = buf.getvalue()
        return cached

    # -- HTTP ----------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests and the demo have their own output

            def do_GET(self) -> None:
                server._get(self)

            def do_POST(self) -> None:
                server._post(self)

        return Handler

    def _send(
        self,
        req: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        req.send_response(status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Cache-Control", "no-store")
        req.end_headers()
        req.wfile.write(body)

    def _json(self, req: BaseHTTPRequestHandler, value: Any) -> None:
        self._send(req, 200, json.dumps(value).encode(), "application/json")

    def _file(self, req: BaseHTTPRequestHandler, path: Path, root: Path | None = None) -> None:
        try:
            resolved = path.resolve()
            resolved.relative_to((root or self.root).resolve())
            body = resolved.read_bytes()
        except (OSError, ValueError):
            self._send(req, HTTPStatus.NOT_FOUND, b"not found\n")
            return
        ctype = CONTENT_TYPES.get(resolved.suffix, "application/octet-stream")
        self._send(req, 200, body, ctype)

    def _get(self, req: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(req.path)
        path = parts.path
        if path == "/__replica/client-origin":
            self._json(req, {"origin": self.client_base_url})
            return
        if path == "/__replica/cameras.js":  # shared by every replica (Scenario.camera_streams)
            body = (REPLICAS_DIR / "cameras.js").read_bytes()
            self._send(req, 200, body, CONTENT_TYPES[".js"])
            return
        if path == "/__replica/camera-sender":  # Scenario.camera_sender == "external"
            body = (REPLICAS_DIR / "camera-sender.html").read_bytes()
            self._send(req, 200, body, CONTENT_TYPES[".html"])
            return
        if path.startswith(f"/__replica/static/{self.platform}/"):
            self._file(req, self.root / path.split("/", 4)[4])
            return
        if path.startswith("/__replica/common/"):  # shared by replicas (uplink, mixed audio)
            common = REPLICAS_DIR / "common"
            self._file(req, common / path.removeprefix("/__replica/common/"), common)
            return
        match = re.fullmatch(
            r"/__replica/m/([^/]+)/(scenario|commands|cameras|audio/(\d+)\.wav)", path
        )
        if match:
            control = self.meetings.get(match.group(1))
            if control is None:
                self._send(req, HTTPStatus.NOT_FOUND, b"no such meeting\n")
            elif match.group(2) == "scenario":
                self._json(req, control.scenario.model_dump())
            elif match.group(2) == "commands":
                after = int(parse_qs(parts.query).get("after", ["0"])[0] or 0)
                self._json(req, control.commands_after(after))
            elif match.group(2) == "cameras":
                with control._lock:
                    self._json(req, {k: dict(v) for k, v in control.camera_signals.items()})
            else:
                index = int(match.group(3))
                people = control.scenario.participants
                if index >= len(people):
                    self._send(req, HTTPStatus.NOT_FOUND, b"no such participant\n")
                else:
                    spec = people[index]
                    silent = control.audio_load(index) < spec.silent_loads
                    wav = self.participant_wav(spec, silent=silent)
                    self._send(req, 200, wav, "audio/wav")
            return
        for pattern, filename in self.routes:
            if pattern.fullmatch(path):
                self._file(req, self.root / filename)
                return
        self._send(req, HTTPStatus.NOT_FOUND, b"not found\n")

    def _post(self, req: BaseHTTPRequestHandler) -> None:
        path = urlsplit(req.path).path
        length = int(req.headers.get("Content-Length") or 0)
        signal = re.fullmatch(
            r"/__replica/m/([^/]+)/cameras/([A-Za-z0-9]{1,32})/(request|offer|answer)", path
        )
        if signal:  # external camera sender signalling (an SDP can exceed the report cap)
            sdp = json.loads(req.rfile.read(min(length, 1 << 20)) or b"null")
            control = self.meetings.get(signal.group(1))
            if control is None:
                self._send(req, HTTPStatus.NOT_FOUND, b"no such meeting\n")
                return
            with control._lock:
                control.camera_signals.setdefault(signal.group(2), {})[signal.group(3)] = sdp
            self._json(req, {"ok": True})
            return
        match = re.fullmatch(r"/__replica/m/([^/]+)/report", path)
        raw = req.rfile.read(min(length, 65536))
        control = self.meetings.get(match.group(1)) if match else None
        if control is None:
            self._send(req, HTTPStatus.NOT_FOUND, b"no such meeting\n")
            return
        try:
            report = json.loads(raw)
        except json.JSONDecodeError:
            self._send(req, HTTPStatus.BAD_REQUEST, b"not json\n")
            return
        if isinstance(report, dict):
            control.add_report(report)
        self._json(req, {"ok": True})
