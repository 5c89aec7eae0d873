"""The transcriber of one call: the contract-3 client, and the local reference transcriber
started in-process when no ``--transcriber-url`` is given.

:class:`CallTranscriber` owns the client's task (cancelled and awaited by :meth:`aclose`);
a transcriber that stays unavailable ends the call through ``on_failure``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from vp.call_part import CallPart
from vp.config import JoinConfig
from vp.errors import VpError
from vp.lifecycle import Reason
from vp.tasks import TaskOwner
from vp.transcriber.client import TranscriberClient
from vp.transcriber.engines import create_engine as create_transcriber_engine
from vp.transcriber.protocol import TranscriptSegment

if TYPE_CHECKING:
    from vp.transcriber.server import LocalTranscriber

SegmentCallback = Callable[[TranscriptSegment], None]


async def open_transcriber(
    cfg: JoinConfig, active_speaker: str | None, on_segment: SegmentCallback
) -> tuple[TranscriberClient, LocalTranscriber | None]:
    """The transcriber client (not yet running) for ``cfg``'s transcriber URL, or for the
    local reference transcriber started here in-process when there is none."""
    url = cfg.transcriber_url
    token = cfg.transcriber_token.get_secret_value() if cfg.transcriber_token else None
    back_channel: SegmentCallback | None = on_segment
    local = None
    if url is None:
        # Imported here: a VP streaming to a URL (every VP on AWS) never needs the server,
        # and importing it (PyJWT, the engines' call state) costs 45 ms of every VP's start.
        from vp.transcriber.server import LocalTranscriber

        # In-process: segments come straight from the server, including the finals it
        # decodes after END (the server drains its engines on close), so none is lost.
        local = LocalTranscriber(
            engine=functools.partial(
                create_transcriber_engine, cfg.engine, wake_phrases=cfg.wake_phrases
            ),
            on_segment=on_segment,
        )
        try:
            await local.start()
        except BaseException:
            await local.aclose()
            raise
        url = local.url
        back_channel = None
    client = TranscriberClient(
        url,
        call_id=cfg.effective_call_id,
        agent_id=cfg.name,
        token=token,
        active_speaker=active_speaker or "n/a",
        buffer_seconds=cfg.transcriber_buffer,
        unavailable_after=cfg.transcriber_wait,
        on_segment=back_channel,
    )
    return client, local


class CallTranscriber(CallPart):
    """Streams the call's audio and speaker changes; segments come back to ``on_segment``."""

    def __init__(
        self,
        cfg: JoinConfig,
        on_segment: SegmentCallback,
        on_failure: Callable[[Reason, str | None], None],
    ) -> None:
        self._cfg = cfg
        self._on_segment = on_segment
        self._on_failure = on_failure
        self.client: TranscriberClient | None = None
        self._local: LocalTranscriber | None = None
        self._owner = TaskOwner()

    async def start(self, active_speaker: str | None) -> None:
        """Open the client (and the local transcriber, if any) and start streaming."""
        self.client, self._local = await open_transcriber(
            self._cfg, active_speaker, self._on_segment
        )
        self._owner.spawn(self._run(self.client), "transcriber-client")

    async def _run(self, client: TranscriberClient) -> None:
        try:
            await client.run()
        except VpError as exc:
            self._on_failure(exc.reason, exc.detail)

    def send_audio(self, frame: bytes) -> None:
        """A stereo frame from the pipeline (the hot path)."""
        if self.client is not None:
            self.client.send_audio(frame)

    def speaker_change(self, name: str) -> None:
        if self.client is not None:
            self.client.speaker_change(name)

    async def end(self, timeout: float) -> None:
        """END to the transcriber, waiting up to ``timeout`` s for what is still queued."""
        if self.client is not None:
            await self.client.end(timeout)

    async def aclose(self) -> None:
        """Stop the client's task, then the local transcriber (it drains its engines)."""
        await self._owner.aclose()
        if self._local is not None:
            await self._local.aclose()
