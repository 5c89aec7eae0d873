"""The VP's voice in one call (``--voice`` not ``off``), wired to the page and the pipeline.

:class:`CallVoice` owns the :class:`~vp.voice.speaker.Speaker` and its task: the intro spoken
right after JOINED, the assistant's answers spoken as well as posted, barge-in (by a new
speaker shown, or by sound rising on ch0 while the VP speaks) and the spoken goodbye. What it
says goes to ch1 through ``AudioPipeline.push_voice``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vp.assistant.assistant import DEFAULT_EXIT, DEFAULT_INTRO, AssistantSettings
from vp.call_part import CallPart
from vp.config import JoinConfig
from vp.page_session import PageSession
from vp.pipeline import AudioPipeline
from vp.tasks import TaskOwner
from vp.voice.page import PageVoiceOutput
from vp.voice.speaker import EnergyRise, Speaker
from vp.voice.synthesis import SpeechSynthesizer, create_synthesizer

REFUSED_NOTE = "the platform refused to unmute the VP (answers stayed in chat)"


def build_synthesizer(cfg: JoinConfig) -> SpeechSynthesizer:
    """The speech engine of a VP whose voice is on (``cfg.voice`` not ``off``)."""
    options: dict[str, Any] = {}
    if cfg.voice == "espeak-ng" and cfg.voice_id:
        options["voice"] = cfg.voice_id
    elif cfg.voice == "polly":
        options["engine"] = cfg.polly_engine
        if cfg.voice_id:
            options["voice_id"] = cfg.voice_id
    return create_synthesizer(cfg.voice, **options)


def render_message(cfg: JoinConfig, template: str | None, default: str) -> str | None:
    """The intro or exit message as the VP says it (None or empty: say nothing)."""
    settings = AssistantSettings(vp_name=cfg.name, invited_by=cfg.invited_by)
    return settings.render(default if template is None else template)


class CallVoice(CallPart):
    """The speaker of one call and everything that drives it. :meth:`aclose` ends its task."""

    def __init__(self, cfg: JoinConfig, session: PageSession, pipeline: AudioPipeline) -> None:
        self._cfg = cfg
        self.speaker = Speaker(
            build_synthesizer(cfg),
            PageVoiceOutput(session),
            on_pcm=pipeline.push_voice,
            on_cut=pipeline.clear_voice,
            on_refused=self._on_unmute_refused,
        )
        self._owner = TaskOwner()
        self._energy = EnergyRise()
        self._energy_armed = False
        self.refused = False  # the platform would not unmute: said in the final detail
        self._speaking_exit = False

    def start(self) -> None:
        """Start speaking (an owned task) and queue the intro."""
        self._owner.spawn(self.speaker.run(), "speaker")
        intro = render_message(self._cfg, self._cfg.intro_message, DEFAULT_INTRO)
        if intro:
            self.speaker.say(intro, "intro")

    def _on_unmute_refused(self) -> None:
        self.refused = True

    def say_answer(self, text: str) -> None:
        """An assistant reply (already posted in chat), spoken as well."""
        self.speaker.say(text, "answer")

    def on_meeting_pcm(self, pcm: bytes) -> None:
        """Barge-in by sound: ch0 is the meeting without the VP, so a rise while the VP
        speaks is someone talking over it."""
        speaking = self.speaker.speaking
        if speaking != self._energy_armed:
            self._energy_armed = speaking
            if speaking:
                self._energy.start()
            else:
                self._energy.stop()
        if self._energy.feed(pcm):
            self.speaker.barge_in()

    def barge_in(self) -> None:
        """Someone else is shown speaking: stop talking over them."""
        self.speaker.barge_in()

    def say_goodbye(self) -> None:
        """Queue the exit message (the VP is still in the meeting)."""
        text = render_message(self._cfg, self._cfg.exit_message, DEFAULT_EXIT)
        self._speaking_exit = bool(text) and self.speaker.say(text or "", "exit")

    async def finish_goodbye(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the exit message has been spoken."""
        if self._speaking_exit:
            await self.speaker.drain(timeout)

    def note(self) -> str | None:
        """For the terminal status detail."""
        return REFUSED_NOTE if self.refused else None

    def summarize(self, stats: dict[str, Any]) -> None:
        stats["voice"] = dataclasses.asdict(self.speaker.stats)

    async def aclose(self) -> None:
        await self._owner.aclose()
