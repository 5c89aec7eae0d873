"""Consent (contract 1, issue 17 part 1): who asked not to be recorded, and when ch0 is silenced.

:class:`Consent` is pure and clock-injected. A participant's own chat command opts them out
(``/norecord``) or back in (``/record``); another person's command on their behalf, and the
VP's own messages, do nothing (the runner passes only other participants' messages, and the
sender is the only person a command applies to). While the driver shows an opted-out
participant as the active speaker, and for ``margin_s`` after it stops showing them (the
indicator lags the audio), ch0 is silenced; each such stretch is one ``redactions`` entry in
summary.json, in seconds from the start of recording.wav. Overlapping speech: silence wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vp.assistant.parsing import consent_command

REDACTION_MARGIN_S = 1.5  # after the indicator leaves a redacted speaker


@dataclass(slots=True)
class Redaction:
    participant: str
    start_s: float
    end_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
        }


class Consent:
    """Opt-outs by chat command and the redaction intervals they cause."""

    def __init__(
        self,
        vp_name: str,
        margin_s: float = REDACTION_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.vp_name = vp_name
        self.margin_s = margin_s
        self._clock = clock
        self._t0 = clock()
        self.opted_out: set[str] = set()
        self._speaker: str | None = None
        self._silence_until: float | None = None  # the margin after a redacted turn
        self.redactions: list[Redaction] = []

    def on_chat(self, sender: str, text: str) -> str | None:
        """A chat message from ``sender`` (never the VP): returns the confirmation to post,
        or None when it is not a consent command (or changes nothing)."""
        command = consent_command(text, self.vp_name)
        if command is None or not sender or sender == self.vp_name:
            return None
        if command == "norecord":
            if sender in self.opted_out:
                return None
            self.opted_out.add(sender)
            self.speaker(self._speaker)  # already speaking: silenced from now
            return f"{sender}: you will not be recorded from now on (send /record to undo)."
        if sender not in self.opted_out:
            return None
        self.opted_out.discard(sender)
        if self.redactions and self.redactions[-1].participant == sender:
            self._close(self._clock())
        return f"{sender}: you are recorded again."

    def speaker(self, name: str | None) -> None:
        """The driver shows ``name`` as the active speaker."""
        now = self._clock()
        was, self._speaker = self._speaker, name
        open_ = self.redactions[-1] if self.redactions else None
        redacting = open_ is not None and open_.end_s is None
        if name is not None and name in self.opted_out:
            if redacting and open_ is not None and open_.participant == name:
                self._silence_until = None
                return
            self._close(now)
            self.redactions.append(Redaction(name, now - self._t0))
            self._silence_until = None
        elif redacting and was != name:
            self._silence_until = now + self.margin_s

    def silencing(self) -> bool:
        """Whether ch0 is silence now (the hot path: called per captured frame)."""
        if not self.redactions or self.redactions[-1].end_s is not None:
            return False
        until = self._silence_until
        if until is not None and self._clock() >= until:
            self._close(until)
            return False
        return True

    def _close(self, at: float) -> None:
        if self.redactions and self.redactions[-1].end_s is None:
            self.redactions[-1].end_s = at - self._t0
        self._silence_until = None

    def at_end(self) -> None:
        self.silencing()
        self._close(self._clock())
