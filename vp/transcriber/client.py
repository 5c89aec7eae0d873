"""The transcriber client: contract 3 over a WebSocket, surviving drops without losing audio.

Everything the VP sends — audio frames and call events — goes through one ordered outbox
(:class:`vp.transcriber.outbox.Outbox`, sans-I/O), so a SPEAKER_CHANGE stays where it
happened in the audio. An item leaves the outbox only after
the socket accepted it; when the connection drops, the client reconnects with backoff,
re-sends START with the same callId, and continues from the first unsent item.

Outbox bound and overflow policy: at most ``buffer_seconds`` of audio waits in the outbox.
Beyond that the OLDEST audio is dropped (recent audio is worth more to a live transcript)
and counted in ``stats.dropped_seconds``; call events are never dropped (the most recent
speaker change before the kept audio is preserved). The outbox fills when the transcriber is
unreachable (an outage) or reads slower than real time (a slow consumer: the socket's write
buffer stays full, so ``send`` waits; a send that waits ``stall_timeout`` seconds ends the
connection, which is then re-opened); either way memory stays bounded: the outbox, the
WebSocket write buffer (``write_limit``) and the kernel's socket buffer (fixed at
``SEND_BUFFER_BYTES``). Overflow is logged
(``transcriber.buffer_overflow``: when it starts, then at most every ``OVERFLOW_LOG_EVERY``
seconds) and every outage is logged when it ends (``transcriber.reconnected`` with the
seconds it lasted and the seconds of audio it cost).

Bounds: before the first successful connection the client retries with exponential backoff
(``backoff_initial`` doubling to ``backoff_max``, jittered) for ``unavailable_after`` seconds,
then raises TranscriberUnavailable. After that, a dropped connection is retried for as long
as the call lasts (the recording keeps everything; the buffer bound caps what is replayed).
The LMA protocol has no acknowledgements: audio the socket accepted just before an abrupt
break (no close handshake) may not have reached the server and cannot be counted; at most
the socket buffers hold (``SEND_BUFFER_BYTES`` here, plus the server's receive buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from vp.errors import TranscriberUnavailable
from vp.transcriber.outbox import AudioItem, Outbox, OutboxCounters, OutboxItem
from vp.transcriber.protocol import (
    FRAME_BYTES_PER_SECOND,
    EndEvent,
    SpeakerChangeEvent,
    StartEvent,
    TranscriptSegment,
    encode_event,
    frame_seconds,
    parse_server_message,
)

log = structlog.get_logger(__name__)

OVERFLOW_LOG_EVERY = 10.0  # seconds between buffer_overflow log lines during one episode
# The kernel send buffer of the connection, fixed instead of autotuned (which lets Linux grow
# it to 4 MiB, about a minute of audio that a consumer that stopped reading would strand
# beyond the outbox bound). 256 KiB is 4 s of audio: ample for real-time streaming on any link.
SEND_BUFFER_BYTES = 256 * 1024

SegmentHandler = Callable[[TranscriptSegment], None]


@dataclass(slots=True)
class ClientStats(OutboxCounters):
    """The outbox's counters plus the connection's."""

    connects: int = 0
    end_sent: bool = False
    outages: int = 0  # connections lost after the first one was up
    outage_seconds: float = 0.0  # total time without a connection after the first one
    longest_outage_s: float = 0.0
    unsent_bytes: int = 0  # audio still in the outbox when END had to be given up

    @property
    def sent_seconds(self) -> float:
        return frame_seconds(self.sent_bytes)

    @property
    def dropped_seconds(self) -> float:
        return frame_seconds(self.dropped_bytes)

    @property
    def lost_seconds(self) -> float:
        """Audio that never reached the transcriber: dropped on overflow or never sent."""
        return frame_seconds(self.dropped_bytes + self.unsent_bytes)


class TranscriberClient:
    """Streams one call to an LMA-protocol transcriber. Run :meth:`run` as an owned task."""

    def __init__(
        self,
        url: str,
        *,
        call_id: str,
        agent_id: str,
        token: str | None = None,
        active_speaker: str = "n/a",
        buffer_seconds: float = 30.0,
        connect_timeout: float = 10.0,
        unavailable_after: float = 30.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 5.0,
        ping_interval: float | None = 10.0,
        ping_timeout: float | None = 20.0,
        stall_timeout: float = 10.0,
        on_segment: SegmentHandler | None = None,
    ) -> None:
        self.url = url
        self.call_id = call_id
        self.agent_id = agent_id
        self._token = token
        self._max_buffer_bytes = int(FRAME_BYTES_PER_SECOND * buffer_seconds)
        self._connect_timeout = connect_timeout
        self._unavailable_after = unavailable_after
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._stall_timeout = stall_timeout
        self._on_segment = on_segment
        self._wake = asyncio.Event()
        self._ending = False
        self._done = asyncio.Event()
        self._abandon_at: float | None = None
        self._down_since: float | None = None  # when the current outage began
        self._dropped_at_outage = 0  # stats.dropped_bytes when it began
        self._overflow_since: float | None = None  # when the current overflow episode began
        self._overflow_logged_at = 0.0
        self.stats = ClientStats()
        self._outbox = Outbox(
            self._max_buffer_bytes, head_speaker=active_speaker, counters=self.stats
        )
        self.connected = False

    @property
    def buffer_seconds(self) -> float:
        return frame_seconds(self._max_buffer_bytes)

    # -- producer side (synchronous, never blocks) -------------------------------------
    def send_audio(self, frame: bytes) -> None:
        if self._ending:
            return
        if self._outbox.push_audio(frame):
            self._note_overflow()
        self._wake.set()

    def speaker_change(self, name: str) -> None:
        if self._ending:
            return
        self._outbox.push_speaker_change(name)
        self._wake.set()

    def _note_overflow(self) -> None:
        now = time.monotonic()
        if self._overflow_since is None:
            self._overflow_since = now
        elif now - self._overflow_logged_at < OVERFLOW_LOG_EVERY:
            return
        self._overflow_logged_at = now
        log.warning(
            "transcriber.buffer_overflow",
            policy="drop-oldest",
            buffer_s=round(self.buffer_seconds, 2),
            dropped_s=round(self.stats.dropped_seconds, 2),
            connected=self.connected,
        )

    # -- connection side ---------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _start_frame(self) -> str:
        return encode_event(
            StartEvent(
                callId=self.call_id,
                agentId=self.agent_id,
                activeSpeaker=self._outbox.head_speaker,
            )
        )

    async def run(self) -> None:
        """Connect, stream, reconnect on drops; return after END was sent (see :meth:`end`).

        Raises TranscriberUnavailable when no connection could be made for
        ``unavailable_after`` seconds before the first success, or when the server rejects
        our credentials (retrying cannot fix that).
        """
        give_up_at = time.monotonic() + self._unavailable_after
        delay = self._backoff_initial
        try:
            while True:
                open_timeout = self._connect_timeout
                if self.stats.connects == 0:  # never beyond the bound, even if SYNs vanish
                    open_timeout = max(0.5, min(open_timeout, give_up_at - time.monotonic()))
                try:
                    async with connect(
                        self.url,
                        additional_headers=self._headers(),
                        open_timeout=open_timeout,
                        compression=None,  # PCM does not compress; deflate only costs CPU
                        max_size=2**20,
                        ping_interval=self._ping_interval,
                        ping_timeout=self._ping_timeout,
                        close_timeout=5,
                        proxy=None,
                    ) as ws:
                        self._fix_send_buffer(ws)
                        self.connected = True
                        self.stats.connects += 1
                        delay = self._backoff_initial
                        self._note_reconnected()
                        log.info("transcriber.connected", connects=self.stats.connects)
                        if await self._stream(ws):
                            return
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    if status in (401, 403):
                        raise TranscriberUnavailable(
                            f"transcriber rejected the credentials (HTTP {status})"
                        ) from exc
                    log.warning("transcriber.handshake_failed", http_status=status)
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
                    log.warning("transcriber.disconnected", error=type(exc).__name__)
                finally:
                    if self.connected and not self.stats.end_sent:
                        self._down_since = time.monotonic()
                        self._dropped_at_outage = self.stats.dropped_bytes
                        self.stats.outages += 1
                    self.connected = False
                pause = delay * (0.5 + random.random())
                if self.stats.connects == 0:
                    left = give_up_at - time.monotonic()
                    if left <= 0:
                        raise TranscriberUnavailable(
                            f"transcriber unreachable for {self._unavailable_after:g} s"
                        )
                    pause = min(pause, left)  # one last attempt right at the bound
                if self._abandon_at is not None and time.monotonic() >= self._abandon_at:
                    self._give_up()
                    return
                await asyncio.sleep(pause)
                delay = min(delay * 2, self._backoff_max)
        finally:
            self._close_outage()
            self._done.set()

    @staticmethod
    def _fix_send_buffer(ws: ClientConnection) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def _note_reconnected(self) -> None:
        if self._down_since is None:
            return
        outage, lost = self._close_outage()
        log.warning(
            "transcriber.reconnected",
            outage_s=round(outage, 2),
            lost_s=round(lost, 2),
            buffer_s=round(self.buffer_seconds, 2),
        )

    def _close_outage(self) -> tuple[float, float]:
        """End the current outage (if any) in the stats; its seconds and audio lost."""
        if self._down_since is None:
            return 0.0, 0.0
        outage = time.monotonic() - self._down_since
        lost = frame_seconds(self.stats.dropped_bytes - self._dropped_at_outage)
        self._down_since = None
        self.stats.outage_seconds += outage
        self.stats.longest_outage_s = max(self.stats.longest_outage_s, outage)
        self._overflow_since = None
        return outage, lost

    def _give_up(self) -> None:
        """END could not be delivered in time: what is still buffered is lost."""
        if self.stats.end_sent or self.stats.unsent_bytes:
            return
        self.stats.unsent_bytes = self.stats.buffered_bytes
        log.warning("transcriber.end_abandoned", unsent_s=round(self._unsent_seconds(), 2))

    async def _stream(self, ws: ClientConnection) -> bool:
        """Send START then the outbox; True once END is sent and the socket closed."""
        await ws.send(self._start_frame())
        receiver = asyncio.create_task(self._receive(ws), name="transcriber-receive")
        try:
            while True:
                while self._outbox:
                    if receiver.done():
                        receiver.result()  # re-raise why the connection ended
                        raise ConnectionClosed(None, None)
                    # Out of the outbox while it is being sent, so an overflow drop (which
                    # can happen while a slow consumer keeps send() waiting) never takes the
                    # frame in flight; back at the head if the send fails.
                    item = self._outbox.take()
                    assert item is not None
                    try:
                        await self._send(ws, self._wire(item))
                    except BaseException:
                        self._outbox.put_back(item)
                        raise
                    self._outbox.sent(item)
                if self._ending:
                    await ws.send(encode_event(EndEvent(callId=self.call_id)))
                    self.stats.end_sent = True
                    await ws.close()
                    log.info("transcriber.end_sent", sent_s=round(self.stats.sent_seconds, 2))
                    return True
                self._wake.clear()
                waiter = asyncio.create_task(self._wake.wait(), name="transcriber-wake")
                try:
                    await asyncio.wait({waiter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if receiver.done() and not self._outbox and not self._ending:
                    receiver.result()
                    raise ConnectionClosed(None, None)
        finally:
            if not receiver.done():
                receiver.cancel()
                try:
                    await receiver
                except (asyncio.CancelledError, ConnectionClosed):
                    pass

    async def _send(self, ws: ClientConnection, item: bytes | str) -> None:
        """``ws.send`` bounded by ``stall_timeout``: a consumer that accepts nothing for that
        long is dead for a real-time stream. Its keepalive pings cannot tell (they queue
        behind the full write buffer), so the connection is aborted here and re-opened."""
        try:
            await asyncio.wait_for(ws.send(item), self._stall_timeout)
        except TimeoutError:
            log.warning("transcriber.stalled", stall_timeout_s=self._stall_timeout)
            ws.transport.abort()  # no close handshake: the peer is not reading
            raise

    def _wire(self, item: OutboxItem) -> bytes | str:
        """The WebSocket message for ``item``: binary PCM, or a SPEAKER_CHANGE text frame."""
        if isinstance(item, AudioItem):
            return item.pcm
        return encode_event(
            SpeakerChangeEvent(callId=self.call_id, agentId=self.agent_id, activeSpeaker=item.name)
        )

    async def _receive(self, ws: ClientConnection) -> None:
        async for message in ws:
            if isinstance(message, str) and self._on_segment is not None:
                segment = parse_server_message(message)
                if segment is not None and segment.call_id == self.call_id:
                    self._on_segment(segment)

    def _unsent_seconds(self) -> float:
        return frame_seconds(self.stats.buffered_bytes)

    async def end(self, timeout: float = 5.0) -> bool:
        """Flush what is buffered, send END and close; True if END reached the server.

        Waits at most ``timeout`` seconds (the transcriber may be down); what could not be
        sent by then is reported as lost.
        """
        self._ending = True
        self._abandon_at = time.monotonic() + timeout
        self._wake.set()
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            self._give_up()
        return self.stats.end_sent
