"""Consent (contract 1, issue 17 part 1): who asked not to be recorded, and when ch0 is silenced.

:class:`Consent` is pure and clock-injected. A participant's own chat command opts them out
(``/norecord``) or back in (``/record``); another person's command on their behalf, and the
VP's own messages, do nothing (the runner passes only other participants' messages, and the
sender is the only person a command applies to).

While the driver shows an opted-out participant as the active speaker, ch0 is silenced, from
``pre_s`` before the indicator showed them to ``post_s`` after it stopped (the indicator lags
the audio: ``bench/bench_indicator_lag.py`` measures by how much). Each such stretch is one
``redactions`` entry in summary.json, in seconds from the start of recording.wav (never before
the participant's own command: "from then on"). Overlapping speech: silence wins.

Reaching back ``pre_s`` needs the audio held that long before anything hears it:
:class:`RedactingDelay` sits between the pipeline and its sinks (recording.wav and the
transcriber), holds the stereo frames from the first opt-out to the end of the call, and
releases each one ``pre_s`` late with ch0 silenced where a redaction covers it. ch1 (the VP's
own voice) travels in the same frames, so the two channels stay aligned, and SPEAKER_CHANGE
events wait in the same line (:meth:`RedactingDelay.in_order`) so the transcriber attributes
the audio to the speaker of its own moment.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vp.assistant.parsing import consent_command
from vp.transcriber.protocol import SAMPLE_RATE

# From bench/bench_indicator_lag.py (README "Consent"): over the replicas and Janus the
# indicator came up to 1.22 s after the audio's onset and left up to 1.32 s after its end
# (the drivers poll the page once a second). Margins: those, plus a capture frame and slack.
REDACTION_PRE_S = 1.5  # before the indicator shows a redacted speaker (= the delay added)
REDACTION_POST_S = 1.5  # after the indicator leaves them
MAX_DELAY_S = 2.5  # contract 1: ch0 may be held back by up to this much

FrameSink = Callable[[bytes], None]


@dataclass(slots=True)
class Redaction:
    participant: str
    start_s: float
    end_s: float | None = None  # None while the indicator shows them

    def to_dict(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
        }


class Consent:
    """Opt-outs by chat command and the redaction intervals they cause (seconds since start)."""

    def __init__(
        self,
        vp_name: str,
        pre_s: float = REDACTION_PRE_S,
        post_s: float = REDACTION_POST_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= pre_s <= MAX_DELAY_S or post_s < 0:
            raise ValueError(f"margins: 0 <= pre_s <= {MAX_DELAY_S}, post_s >= 0")
        self.vp_name = vp_name
        self.pre_s = pre_s
        self.post_s = post_s
        self._clock = clock
        self._t0 = clock()
        self.opted_out: set[str] = set()
        self._since: dict[str, float] = {}  # participant -> when their opt-out began
        self.first_opt_out_s: float | None = None
        self.opt_outs: list[dict[str, Any]] = []  # {participant, from_s, to_s} per opt-out
        self._speaker: str | None = None
        self.redactions: list[Redaction] = []

    def now_s(self) -> float:
        return self._clock() - self._t0

    def on_chat(self, sender: str, text: str) -> str | None:
        """A chat message from ``sender`` (never the VP): returns the confirmation to post,
        or None when it is not a consent command (or changes nothing)."""
        command = consent_command(text, self.vp_name)
        if command is None or not sender or sender == self.vp_name:
            return None
        now = self.now_s()
        if command == "norecord":
            if sender in self.opted_out:
                return None
            self.opted_out.add(sender)
            self._since[sender] = now
            self.opt_outs.append({"participant": sender, "from_s": round(now, 3), "to_s": None})
            if self.first_opt_out_s is None:
                self.first_opt_out_s = now
            if self._speaker == sender:  # already speaking: silenced from now
                self.redactions.append(Redaction(sender, now))
            return f"{sender}: you will not be recorded from now on (send /record to undo)."
        if sender not in self.opted_out:
            return None
        self.opted_out.discard(sender)
        del self._since[sender]
        for entry in self.opt_outs:
            if entry["participant"] == sender and entry["to_s"] is None:
                entry["to_s"] = round(now, 3)
        for r in self.redactions:  # recorded again from now: no margin beyond the command
            if r.participant == sender and (r.end_s is None or r.end_s > now):
                r.end_s = max(r.start_s, now)
        return f"{sender}: you are recorded again."

    def speaker(self, name: str | None) -> None:
        """The driver shows ``name`` as the active speaker."""
        now = self.now_s()
        was, self._speaker = self._speaker, name
        if was == name:
            return
        if was is not None:
            for r in self.redactions:
                if r.participant == was and r.end_s is None:
                    r.end_s = now + self.post_s
        if name is None or name not in self.opted_out:
            return
        start = max(now - self.pre_s, self._since[name])
        last = next((r for r in reversed(self.redactions) if r.participant == name), None)
        if last is not None and last.end_s is not None and last.end_s >= start:
            last.end_s = None  # back within the margins of their last turn: one stretch
        else:
            self.redactions.append(Redaction(name, start))

    def silenced(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """The parts of ``[start_s, end_s)`` inside a redaction (ch0 silence there)."""
        spans = []
        for r in self.redactions:
            lo = max(start_s, r.start_s)
            hi = end_s if r.end_s is None else min(end_s, r.end_s)
            if hi > lo:
                spans.append((lo, hi))
        return spans

    def redacts(self, speaker: str, start_s: float, end_s: float) -> bool:
        """Whether a transcript line of ``speaker`` over ``[start_s, end_s]`` (stream seconds)
        must not be kept: they are opted out now, or a redaction of theirs covers part of it
        (a line can arrive after their ``/record``: the stream runs ``pre_s`` late)."""
        if speaker in self.opted_out:
            return True
        return any(
            r.participant == speaker
            and r.start_s <= end_s
            and (r.end_s is None or r.end_s >= start_s)
            for r in self.redactions
        )

    def silencing(self) -> bool:
        """Whether ch0 is silenced at this moment."""
        now = self.now_s()
        return bool(self.silenced(now, now + 1e-6))

    def at_end(self) -> None:
        """The call ended: close what is open (a margin past the end is cut at the end)."""
        now = self.now_s()
        for r in self.redactions:
            if r.end_s is None or r.end_s > now:
                r.end_s = max(r.start_s, now)

    def summary(self, delay: RedactingDelay | None = None) -> dict[str, Any]:
        """summary.json's ``consent`` block: the margins and the delay the stream carried."""
        return {
            "pre_margin_s": self.pre_s,
            "post_margin_s": self.post_s,
            "delay_s": delay.delay_s if delay is not None else 0.0,
            "delay_from_s": delay.delay_from_s if delay is not None else None,
            "silenced_s": round(delay.silenced_samples / SAMPLE_RATE, 3) if delay else 0.0,
            "opt_outs": self.opt_outs,
        }


class RedactingDelay:
    """Between the pipeline and its sinks: ch0 silenced under redactions, ``pre_s`` late.

    Before anyone opts out, frames pass straight through (no latency). From the first opt-out
    to the end of the call, each stereo frame is held until the consent clock passes its end
    plus ``pre_s`` (everything the indicator will reveal about it is known by then), bounded
    at :data:`MAX_DELAY_S` of audio, then released with ch0 zeroed where
    :meth:`Consent.silenced` says. A frame's place in the stream (samples before it) is its
    time: the pipeline keeps the stream level with the clock the consent runs on.
    """

    def __init__(self, sinks: Sequence[FrameSink], max_hold_s: float = MAX_DELAY_S) -> None:
        self._sinks = list(sinks)
        self._max_hold = int(max_hold_s * SAMPLE_RATE)
        self.consent: Consent | None = None
        self._held: deque[tuple[int, bytes]] = deque()  # (first sample's position, frame)
        self._calls: deque[tuple[int, Callable[[], None]]] = deque()
        self._in = 0  # samples received
        self.delay_s = 0.0
        self.delay_from_s: float | None = None
        self.silenced_samples = 0
        self.forced_releases = 0  # released at the bound before their time (clock skew)

    def attach(self, consent: Consent) -> None:
        self.consent = consent

    def push(self, frame: bytes) -> None:
        """A stereo frame from the pipeline (the hot path)."""
        at = self._in
        self._in += len(frame) // 4
        consent = self.consent
        if consent is None or (consent.first_opt_out_s is None and not self._held):
            self._deliver(at, frame)
            return
        if self.delay_from_s is None:
            self.delay_from_s, self.delay_s = at / SAMPLE_RATE, consent.pre_s
        self._held.append((at, frame))
        self._release(consent.now_s())

    def in_order(self, call: Callable[[], None]) -> None:
        """Run ``call`` (a SPEAKER_CHANGE) when the audio of this moment goes out."""
        if not self._held and (self.consent is None or self.consent.first_opt_out_s is None):
            call()
        else:
            self._calls.append((self._in, call))

    def flush(self) -> None:
        """The call ends: release everything held, with what is known now."""
        while self._held:
            self._deliver(*self._held.popleft())
        while self._calls:
            self._calls.popleft()[1]()

    def _release(self, now_s: float) -> None:
        pre = self.consent.pre_s if self.consent is not None else 0.0
        while self._held:
            at, frame = self._held[0]
            end = at + len(frame) // 4
            if end / SAMPLE_RATE + pre > now_s:
                if self._in - at <= self._max_hold:
                    return
                self.forced_releases += 1
            self._held.popleft()
            self._deliver(at, frame)

    def _deliver(self, at: int, frame: bytes) -> None:
        while self._calls and self._calls[0][0] <= at:
            self._calls.popleft()[1]()
        n = len(frame) // 4
        if self.consent is not None and self.consent.redactions:
            spans = self.consent.silenced(at / SAMPLE_RATE, (at + n) / SAMPLE_RATE)
            if spans:
                stereo = np.frombuffer(frame, dtype="<i2").reshape(-1, 2).copy()
                for lo, hi in spans:
                    a = max(0, round(lo * SAMPLE_RATE) - at)
                    b = min(n, round(hi * SAMPLE_RATE) - at)
                    stereo[a:b, 0] = 0
                    self.silenced_samples += max(0, b - a)
                frame = stereo.tobytes()
        for sink in self._sinks:
            sink(frame)
