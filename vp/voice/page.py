"""The speaker's output in a meeting page: the capture script's outgoing voice track, and
the platform driver's microphone control."""

from __future__ import annotations

from playwright.async_api import Frame, Page

from vp.page_session import PageSession
from vp.voice.speaker import VoiceOutput


class PageVoiceOutput(VoiceOutput):
    """Plays into the current page of ``session`` (a new one after a rejoin)."""

    def __init__(self, session: PageSession) -> None:
        self._session = session

    def _target(self) -> Page | Frame | None:
        """The page, or the frame of it whose microphone the client uses (Webex)."""
        driver, page = self._session.driver, self._session.page
        frame = driver.voice_frame() if driver is not None else None
        return frame if frame is not None else page

    async def play(self, pcm: bytes) -> float:
        capture, target = self._session.capture, self._target()
        if capture is None or target is None:
            return 0.0
        return await capture.voice_play(target, pcm)

    async def stop(self) -> None:
        capture, target = self._session.capture, self._target()
        if capture is not None and target is not None:
            await capture.voice_stop(target)

    async def microphone(self, on: bool) -> bool:
        driver = self._session.driver
        if driver is None:
            return False
        return await driver.set_microphone(on)
