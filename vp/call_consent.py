"""Consent in one call (contract 1): :class:`~vp.consent.Consent` wired to the call.

:class:`CallConsent` feeds the pure :class:`~vp.consent.Consent` what the meeting shows (the
active speaker, chat commands), silences ch0 while it says so (through a delay line, so speech
just before the indicator is silenced too), keeps transcript lines of opted-out participants
out of the call's outputs, and posts each confirmation in chat from a task it owns (cancelled
and awaited by :meth:`aclose`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from vp.call_part import CallPart
from vp.consent import Consent, FrameSink, RedactingDelay
from vp.tasks import TaskOwner
from vp.transcriber.protocol import TranscriptSegment

log = structlog.get_logger(__name__)


class CallConsent(CallPart):
    """Acts from :meth:`start` on (with recording: redaction times count from the start of
    recording.wav); before, nobody has opted out and nothing is silenced."""

    def __init__(
        self,
        vp_name: str,
        post: Callable[[str], Awaitable[None]],
        sinks: Sequence[FrameSink],
    ) -> None:
        self._vp_name = vp_name
        self.consent: Consent | None = None
        # Between the pipeline and ``sinks``: ch0 redacted, held back once someone opts out.
        self.delay = RedactingDelay(sinks)
        self._post = post
        self._owner = TaskOwner()

    def start(self, active_speaker: str | None) -> None:
        self.consent = Consent(self._vp_name)
        self.consent.speaker(active_speaker)
        self.delay.attach(self.consent)

    def speaker(self, name: str) -> None:
        """The driver shows ``name`` as the active speaker."""
        if self.consent is not None:
            self.consent.speaker(name)

    def on_chat(self, sender: str, text: str) -> None:
        """A chat message from another participant: a consent command is confirmed in chat."""
        if self.consent is None:
            return
        confirm = self.consent.on_chat(sender, text)
        if confirm is not None:
            self._owner.spawn(self._confirm(confirm), "consent-confirm")

    async def _confirm(self, text: str) -> None:
        try:
            await self._post(text)
        except Exception as exc:  # the chat may be gone (leaving): the opt-out stands anyway
            log.warning("vp.consent_confirm_failed", error=type(exc).__name__)

    def hides(self, segment: TranscriptSegment) -> bool:
        """Never attribute a transcript line to a participant who opted out."""
        consent = self.consent
        return consent is not None and consent.redacts(
            segment.speaker, segment.start_time, segment.end_time
        )

    def summarize(self, stats: dict[str, Any]) -> None:
        """summary.json's ``redactions`` (closing one still open)."""
        if self.consent is not None:
            self.consent.at_end()
        redactions = self.consent.redactions if self.consent is not None else []
        stats["redactions"] = [r.to_dict() for r in redactions]
        if self.consent is not None:
            stats["consent"] = self.consent.summary(self.delay)

    async def aclose(self) -> None:
        await self._owner.aclose()
