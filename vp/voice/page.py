"""The speaker's output in a meeting page: the capture script's outgoing voice track, and
the platform driver's microphone control."""

from __future__ import annotations

from vp.page_session import PageSession
from vp.voice.speaker import VoiceOutput


class PageVoiceOutput(VoiceOutput):
    """Plays into the current page of ``session`` (a new one after a rejoin)."""

    def __init__(self, session: PageSession) -> None:
        self._session = session

    async def play(self, pcm: bytes) -> float:
        capture, page = self._session.capture, self._session.page
        if capture is None or page is None:
            return 0.0
        return await capture.voice_play(page, pcm)

    async def stop(self) -> None:
        capture, page = self._session.capture, self._session.page
        if capture is not None and page is not None:
            await capture.voice_stop(page)

    async def microphone(self, on: bool) -> bool:
        driver = self._session.driver
        if driver is None:
            return False
        return await driver.set_microphone(on)
