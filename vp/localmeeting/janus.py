"""A real Janus WebRTC server on loopback, and a small async client for its HTTP API.

:class:`JanusServer` runs Debian's ``janus`` with a configuration copied from ``/etc/janus``
and trimmed down: only the HTTP transport (bound to 127.0.0.1) and the AudioBridge plugin are
loaded; no event handlers, loggers, websockets, video plugins. ICE is restricted to the
loopback interface. The process runs in its own process group, which is killed on stop.

:class:`JanusClient` speaks the Janus HTTP API (plain ``urllib`` in a worker thread: a handful
of requests on loopback, no dependency needed) to manage AudioBridge rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vp.settings import VpSettings

JANUS_BIN_CANDIDATES = ("/usr/bin/janus", "/usr/local/bin/janus", "/opt/janus/bin/janus")
DEFAULT_CONFIG_DIR = Path("/etc/janus")
LOOPBACK = "127.0.0.1"
AUDIOBRIDGE = "janus.plugin.audiobridge"

# Everything but the HTTP transport and the AudioBridge plugin is disabled. Janus ignores
# names in these lists that it doesn't have, so listing extra ones is harmless.
_DISABLED_PLUGINS = (
    "libjanus_duktape.so",
    "libjanus_echotest.so",
    "libjanus_lua.so",
    "libjanus_nosip.so",
    "libjanus_recordplay.so",
    "libjanus_sip.so",
    "libjanus_streaming.so",
    "libjanus_textroom.so",
    "libjanus_videocall.so",
    "libjanus_videoroom.so",
    "libjanus_voicemail.so",
)
_DISABLED_TRANSPORTS = (
    "libjanus_websockets.so",
    "libjanus_rabbitmq.so",
    "libjanus_mqtt.so",
    "libjanus_nanomsg.so",
    "libjanus_pfunix.so",
)
_DISABLED_EVENTS = (
    "libjanus_gelfevh.so",
    "libjanus_mqttevh.so",
    "libjanus_nanomsgevh.so",
    "libjanus_rabbitmqevh.so",
    "libjanus_sampleevh.so",
    "libjanus_wsevh.so",
)
_DISABLED_LOGGERS = ("libjanus_jsonlog.so",)


class JanusError(Exception):
    """Janus did not start, or answered an API request with an error."""


def find_janus() -> str:
    """The ``janus`` binary; ``VP_JANUS`` overrides."""
    configured = VpSettings.from_env(only=frozenset({"janus"})).janus
    if configured:
        return configured
    for candidate in JANUS_BIN_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    found = shutil.which("janus")
    if found:
        return found
    raise JanusError("janus not found: install Debian's janus package or set VP_JANUS")


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free a moment ago (the usual small race applies)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Whether something listens on ``port`` (TIME_WAIT leftovers don't count: Janus' web
    server binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


# --------------------------------------------------------------------------------------------
# Configuration


def _set_in_section(text: str, section: str, key: str, value: str) -> str:
    """Set ``key = value`` inside the top-level ``section: { ... }`` of a .jcfg file.

    An existing (uncommented) key in that section is replaced; otherwise the line is inserted
    right after the section's opening brace. A missing section is appended.
    """
    opening = re.search(rf"^{re.escape(section)}\s*:\s*\{{[ \t]*$", text, re.MULTILINE)
    if opening is None:
        return f"{text.rstrip()}\n\n{section}: {{\n\t{key} = {value}\n}}\n"
    # The section ends at the first line that is just a closing brace (jcfg top-level style).
    closing = re.compile(r"^\}[ \t]*$", re.MULTILINE).search(text, opening.end())
    end = closing.start() if closing else len(text)
    body = text[opening.end() : end]
    key_line = re.compile(rf"^([ \t]*){re.escape(key)}\s*=.*$", re.MULTILINE)
    if key_line.search(body):
        body = key_line.sub(lambda m: f"{m.group(1)}{key} = {value}", body, count=1)
    else:
        body = f"\n\t{key} = {value}{body}"
    return text[: opening.end()] + body + text[end:]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    src: Path, dst: Path, *, http_port: int, debug_level: int, rtp_port_range: str | None
) -> None:
    """Copy Janus' configuration from ``src`` to ``dst``, trimmed for a local test meeting."""
    dst.mkdir(parents=True, exist_ok=True)
    main = (src / "janus.jcfg").read_text()
    main = _set_in_section(main, "general", "configs_folder", _quote(str(dst)))
    main = _set_in_section(main, "general", "debug_level", str(debug_level))
    main = _set_in_section(main, "general", "server_name", _quote("vp-localmeeting"))
    main = _set_in_section(main, "general", "session_timeout", "60")
    main = _set_in_section(main, "plugins", "disable", _quote(",".join(_DISABLED_PLUGINS)))
    main = _set_in_section(main, "transports", "disable", _quote(",".join(_DISABLED_TRANSPORTS)))
    main = _set_in_section(main, "events", "broadcast", "false")
    main = _set_in_section(main, "events", "disable", _quote(",".join(_DISABLED_EVENTS)))
    main = _set_in_section(main, "loggers", "disable", _quote(",".join(_DISABLED_LOGGERS)))
    # Only loopback host candidates: nothing leaves the machine, and ICE has less to try.
    main = _set_in_section(main, "nat", "ice_enforce_list", _quote(LOOPBACK))
    main = _set_in_section(main, "nat", "ignore_mdns", "true")
    if rtp_port_range:
        main = _set_in_section(main, "media", "rtp_port_range", _quote(rtp_port_range))
    (dst / "janus.jcfg").write_text(main)

    http = (src / "janus.transport.http.jcfg").read_text()
    http = _set_in_section(http, "general", "http", "true")
    http = _set_in_section(http, "general", "port", str(http_port))
    http = _set_in_section(http, "general", "ip", _quote(LOOPBACK))
    http = _set_in_section(http, "general", "https", "false")
    http = _set_in_section(http, "general", "json", _quote("compact"))
    http = _set_in_section(http, "admin", "admin_http", "false")
    http = _set_in_section(http, "admin", "admin_https", "false")
    (dst / "janus.transport.http.jcfg").write_text(http)

    audiobridge = src / "janus.plugin.audiobridge.jcfg"
    if audiobridge.exists():
        shutil.copyfile(audiobridge, dst / "janus.plugin.audiobridge.jcfg")
    else:  # pragma: no cover - Debian ships it
        (dst / "janus.plugin.audiobridge.jcfg").write_text("general: {\n}\n")


# --------------------------------------------------------------------------------------------
# HTTP API client


class JanusClient:
    """Async client for the Janus HTTP API (``http://127.0.0.1:PORT/janus``).

    Each AudioBridge request uses a short-lived session (create → attach → message → destroy),
    so nothing needs keep-alives and the client can be used at any time, from any task.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    # -- transport --------------------------------------------------------------------------

    def _call_sync(self, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise JanusError(f"Janus HTTP API {self.url}{path} unreachable: {exc}") from exc
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise JanusError(f"Janus answered non-JSON: {raw[:200]!r}") from exc
        if not isinstance(answer, dict):
            raise JanusError(f"Janus answered unexpected JSON: {answer!r}")
        return answer

    async def _call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self._call_sync, path, body)

    async def _janus(self, path: str, janus: str, **fields: Any) -> dict[str, Any]:
        answer = await self._call(
            path, {"janus": janus, "transaction": secrets.token_hex(6), **fields}
        )
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            raise JanusError(f"Janus {janus} failed: {error.get('code')} {error.get('reason')}")
        return answer

    # -- core API ---------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        """The server's ``{"janus": "server_info", ...}`` answer."""
        return await self._call("/info")

    async def plugin_request(
        self, body: Mapping[str, Any], plugin: str = AUDIOBRIDGE
    ) -> dict[str, Any]:
        """Send one synchronous plugin request; return the plugin's ``data`` object."""
        created = await self._janus("", "create")
        session_id = created["data"]["id"]
        try:
            attached = await self._janus(f"/{session_id}", "attach", plugin=plugin)
            handle_id = attached["data"]["id"]
            answer = await self._janus(f"/{session_id}/{handle_id}", "message", body=dict(body))
        finally:
            with contextlib.suppress(JanusError):
                await self._janus(f"/{session_id}", "destroy")
        data = answer.get("plugindata", {}).get("data")
        if not isinstance(data, dict):
            raise JanusError(f"Janus {body.get('request')!r}: unexpected answer {answer!r}")
        if "error" in data or "error_code" in data:
            raise JanusError(
                f"AudioBridge {body.get('request')!r} failed: "
                f"{data.get('error_code')} {data.get('error')}"
            )
        return data

    # -- AudioBridge rooms --------------------------------------------------------------------

    async def create_room(
        self,
        room_id: int,
        *,
        sampling_rate: int = 16000,
        audiolevel_event: bool = True,
        description: str | None = None,
        secret: str | None = None,
        audio_active_packets: int = 50,
        audio_level_average: int = 40,
        record: bool = False,
        allow_existing: bool = False,
        **extra: Any,
    ) -> None:
        """Create AudioBridge room ``room_id`` (not permanent: it dies with the server)."""
        body: dict[str, Any] = {
            "request": "create",
            "room": room_id,
            "description": description or f"vp test room {room_id}",
            "sampling_rate": sampling_rate,
            "audiolevel_event": audiolevel_event,
            "audio_active_packets": audio_active_packets,
            "audio_level_average": audio_level_average,
            "record": record,
            "permanent": False,
            **extra,
        }
        if secret is not None:
            body["secret"] = secret
        try:
            await self.plugin_request(body)
        except JanusError as exc:
            if allow_existing and " 486 " in f" {exc} ":
                return
            raise

    async def destroy_room(self, room_id: int, *, secret: str | None = None) -> None:
        body: dict[str, Any] = {"request": "destroy", "room": room_id, "permanent": False}
        if secret is not None:
            body["secret"] = secret
        await self.plugin_request(body)

    async def room_exists(self, room_id: int) -> bool:
        data = await self.plugin_request({"request": "exists", "room": room_id})
        return bool(data.get("exists"))

    async def list_rooms(self) -> list[int]:
        data = await self.plugin_request({"request": "list"})
        return [int(room["room"]) for room in data.get("list", [])]

    async def participants(self, room_id: int) -> list[dict[str, Any]]:
        """Raw participant objects: ``id``, ``display``, ``setup``, ``muted``, ``talking``…"""
        data = await self.plugin_request({"request": "listparticipants", "room": room_id})
        found = data.get("participants", [])
        return [p for p in found if isinstance(p, dict)]

    async def list_participants(self, room_id: int) -> list[str]:
        """Display names of everyone in the room."""
        return [str(p.get("display", "")) for p in await self.participants(room_id)]


# --------------------------------------------------------------------------------------------
# Server process


class JanusServer:
    """One ``janus`` process on 127.0.0.1, configured in (and logging to) ``workdir``.

    ``http_port=0`` picks a free port (recommended for tests: it doesn't collide with a
    developer's own Janus on 8088). ``workdir=None`` uses a temporary directory that is removed
    on stop unless ``keep_workdir``.

    Use as ``async with JanusServer(http_port=0) as janus: await janus.client.create_room(5)``.
    """

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        http_port: int = 8088,
        config_src: Path | str = DEFAULT_CONFIG_DIR,
        debug_level: int = 4,
        rtp_port_range: str | None = None,
        start_timeout: float = 20.0,
        keep_workdir: bool = False,
        janus_bin: str | None = None,
    ) -> None:
        self._requested_port = http_port
        self._port: int | None = None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._tmpdir: str | None = None
        self.config_src = Path(config_src)
        self.debug_level = debug_level
        self.rtp_port_range = rtp_port_range
        self.start_timeout = start_timeout
        self.keep_workdir = keep_workdir
        self.janus_bin = janus_bin
        self._proc: asyncio.subprocess.Process | None = None
        self._log_handle: Any = None
        self.start_seconds: float | None = None  # how long the last start took

    # -- properties ---------------------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._workdir_arg is not None:
            return self._workdir_arg
        if self._tmpdir is None:
            raise RuntimeError("JanusServer is not started")
        return Path(self._tmpdir)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("JanusServer is not started")
        return self._port

    @property
    def http_url(self) -> str:
        """The Janus API base URL, e.g. ``http://127.0.0.1:8088/janus``."""
        return f"http://{LOOPBACK}:{self.port}/janus"

    @property
    def log_path(self) -> Path:
        return self.workdir / "janus.log"

    @property
    def client(self) -> JanusClient:
        return JanusClient(self.http_url)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def pids(self) -> list[int]:
        """The Janus process and any descendants (Janus is normally a single process)."""
        if self._proc is None or self._proc.returncode is not None:
            return []
        return [self._proc.pid, *descendant_pids(self._proc.pid)]

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._proc is not None:
            raise RuntimeError("JanusServer already started")
        if self._workdir_arg is None:
            self._tmpdir = tempfile.mkdtemp(prefix="vp-janus-")
        else:
            self._workdir_arg.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        attempts = 3 if self._requested_port == 0 else 1
        try:
            for attempt in range(attempts):
                port = self._requested_port or free_port()
                if port_in_use(port):
                    if attempt + 1 < attempts:
                        continue
                    raise JanusError(
                        f"port {LOOPBACK}:{port} is already in use (another janus?); "
                        "use http_port=0 to pick a free one"
                    )
                self._port = port
                try:
                    await self._spawn_and_wait()
                    break
                except JanusError:
                    await self._kill()
                    if attempt + 1 >= attempts:
                        raise
        except BaseException:
            await self.stop()
            raise
        self.start_seconds = time.monotonic() - started

    async def _spawn_and_wait(self) -> None:
        conf = self.workdir / "conf"
        write_config(
            self.config_src,
            conf,
            http_port=self.port,
            debug_level=self.debug_level,
            rtp_port_range=self.rtp_port_range,
        )
        log_path = self.log_path
        if self._log_handle is not None:
            self._log_handle.close()
        self._log_handle = open(log_path.with_suffix(".stderr"), "ab")  # noqa: SIM115
        self._proc = await asyncio.create_subprocess_exec(
            self.janus_bin or find_janus(),
            "-F",
            str(conf),
            f"--interface={LOOPBACK}",
            "-L",
            str(log_path),
            "-N",
            "-o",  # no colour escapes in the log
            "-D",  # timestamps in the log
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log_handle,
            start_new_session=True,  # own process group: killpg on stop
        )
        deadline = time.monotonic() + self.start_timeout
        client = JanusClient(self.http_url, timeout=2.0)
        while True:
            if self._proc.returncode is not None:
                raise JanusError(
                    f"janus exited with {self._proc.returncode} while starting; "
                    f"log {log_path}:\n{self._log_tail()}"
                )
            try:
                info = await client.info()
                if info.get("janus") == "server_info":
                    return
            except JanusError:
                pass
            if time.monotonic() > deadline:
                raise JanusError(
                    f"janus did not answer on {self.http_url} within {self.start_timeout:.0f}s; "
                    f"log {log_path}:\n{self._log_tail()}"
                )
            await asyncio.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def _kill(self, grace: float = 3.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.returncode is None:
                _killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), grace)
                except TimeoutError:
                    pass
            # Anything left in the group (or Janus itself, if it ignored SIGTERM) dies now.
            _killpg(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                await asyncio.wait_for(proc.wait(), 5.0)
        except asyncio.CancelledError:
            _killpg(proc.pid, signal.SIGKILL)
            raise

    async def stop(self) -> None:
        """Stop Janus (SIGTERM to its process group, then SIGKILL); safe to call twice."""
        try:
            await self._kill()
        finally:
            if self._log_handle is not None:
                self._log_handle.close()
                self._log_handle = None
            if self._tmpdir is not None and not self.keep_workdir:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None

    aclose = stop

    async def __aenter__(self) -> JanusServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def descendant_pids(root: int) -> list[int]:
    """PIDs of all descendants of ``root`` (from /proc; empty where /proc is unavailable)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) < 2:
            continue
        children.setdefault(int(rest[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found
