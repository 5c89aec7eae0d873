"""The meeting assistant: decides what the VP says in the meeting chat.

It reads every incoming chat message and every final transcript segment. A whole-message end
command (``Scribe leave``) makes the VP thank the sender and leave; a wake phrase (``OK
Assistant, …``) in chat or speech gets an answer from the engine, posted in chat with a prefix
so people can tell it is the assistant's, split to the platform's chat limit.

Safety: chat text is only ever data — matched against fixed rules and passed to the engine
as a question; never evaluated. The VP never answers itself (its own name or prefix), replies
at most once per question (the same question heard in chat and in speech within
``dedup_window_s`` gets one answer) and at most ``max_replies_per_minute`` times a minute.
The engine's context holds participant names and the transcript only — never a secret.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from vp.assistant.engines import AssistantEngine, MeetingContext, Utterance
from vp.assistant.parsing import DEFAULT_WAKE_PHRASES, WakePhrase, is_end_command, split_message
from vp.tasks import TaskOwner

log = structlog.get_logger(__name__)

DEFAULT_INTRO = (
    "Hello, I’m {name}, a virtual meeting assistant{invited_by}. I’m transcribing this meeting. "
    "Ask me a question in chat starting with “OK Assistant”. "
    "To make me leave at any time, type “{name} leave”."
)
DEFAULT_EXIT = "{name} has left the meeting. Thanks, everyone!"
REPLY_PREFIX = "🤖 {name} (assistant): "

PostChat = Callable[[str, bool], Awaitable[None]]  # (text, is_assistant_reply)


@dataclass
class AssistantSettings:
    vp_name: str
    intro_message: str | None = DEFAULT_INTRO  # None or "" disables
    exit_message: str | None = DEFAULT_EXIT
    invited_by: str | None = None
    wake_phrases: tuple[str, ...] = DEFAULT_WAKE_PHRASES
    chat_limit: int = 1000
    max_replies_per_minute: int = 6
    dedup_window_s: float = 30.0
    max_utterances: int = 500

    def render(self, template: str | None) -> str | None:
        if not template:
            return None
        invited = f", invited by {self.invited_by}" if self.invited_by else ""
        return template.replace("{name}", self.vp_name).replace("{invited_by}", invited)

    @property
    def prefix(self) -> str:
        return REPLY_PREFIX.format(name=self.vp_name)


@dataclass
class AssistantStats:
    questions: int = 0
    replies: int = 0
    duplicates: int = 0
    rate_limited: int = 0
    end_commands: int = 0


@dataclass
class MeetingAssistant:
    """One per VP. ``post`` sends a chat message; ``on_end_command`` ends the VP."""

    settings: AssistantSettings
    engine: AssistantEngine
    post: PostChat
    on_end_command: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    participants: tuple[str, ...] = ()
    stats: AssistantStats = field(default_factory=AssistantStats)

    def __post_init__(self) -> None:
        self._wake = WakePhrase(self.settings.wake_phrases)
        self._utterances: deque[Utterance] = deque(maxlen=self.settings.max_utterances)
        self._recent_questions: dict[str, float] = {}
        self._reply_times: deque[float] = deque()
        self._owner = TaskOwner()
        self._intro_sent = False
        self._exit_sent = False
        self._leaving = False

    # -- messages ------------------------------------------------------------------------
    async def introduce(self) -> None:
        """Post the intro message once (after JOINED)."""
        text = self.settings.render(self.settings.intro_message)
        if text and not self._intro_sent:
            self._intro_sent = True
            await self._post_split(text, assistant=False)

    async def say_goodbye(self) -> None:
        """Post the exit message once, while still in the meeting."""
        text = self.settings.render(self.settings.exit_message)
        if text and not self._exit_sent:
            self._exit_sent = True
            await self._post_split(text, assistant=False)

    # -- inputs --------------------------------------------------------------------------
    def on_chat(self, sender: str, text: str) -> None:
        """An incoming chat message (from anyone but the VP)."""
        if self._is_own(sender, text) or self._leaving:
            return
        if is_end_command(text, self.settings.vp_name):
            self.stats.end_commands += 1
            self._leaving = True
            self._owner.spawn(self._end(sender), "assistant-end-command")
            return
        question = self._wake.question(text)
        if question is not None:
            self._ask(question, sender)

    def on_transcript(self, speaker: str, text: str) -> None:
        """A final transcript segment (the VP's own voice excluded by the caller)."""
        if not text.strip():
            return
        self._utterances.append(Utterance(speaker, text.strip(), self.clock()))
        question = self._wake.question(text)
        if question is not None and not self._leaving:
            self._ask(question, speaker)

    # -- internals -----------------------------------------------------------------------
    def _is_own(self, sender: str, text: str) -> bool:
        return sender.strip() == self.settings.vp_name or text.startswith(self.settings.prefix)

    def _ask(self, question: str, asker: str) -> None:
        self.stats.questions += 1
        now = self.clock()
        key = " ".join(question.lower().split()).strip(" ?!.")
        for old, at in list(self._recent_questions.items()):
            if now - at > self.settings.dedup_window_s:
                del self._recent_questions[old]
        if key in self._recent_questions:
            self.stats.duplicates += 1
            return
        while self._reply_times and now - self._reply_times[0] > 60:
            self._reply_times.popleft()
        if len(self._reply_times) >= self.settings.max_replies_per_minute:
            self.stats.rate_limited += 1
            log.warning("assistant.rate_limited", replies_last_minute=len(self._reply_times))
            return
        self._recent_questions[key] = now
        self._reply_times.append(now)
        self._owner.spawn(self._answer(question, asker), "assistant-answer")

    async def _answer(self, question: str, asker: str) -> None:
        context = MeetingContext(
            vp_name=self.settings.vp_name,
            participants=self.participants,
            transcript=tuple(self._utterances),
            asker=asker,
        )
        answer = await self.engine.answer(question, context)
        self.stats.replies += 1
        await self._post_split(self.settings.prefix + answer, assistant=True)

    async def _end(self, sender: str) -> None:
        try:
            await self._post_split(f"Thanks {sender} — I’ll head out now.", assistant=False)
        finally:
            self.on_end_command(sender)

    async def _post_split(self, text: str, *, assistant: bool) -> None:
        for part in split_message(text, self.settings.chat_limit):
            try:
                await self.post(part, assistant)
            except Exception as exc:
                log.warning("assistant.post_failed", error=type(exc).__name__)
                return

    async def aclose(self) -> None:
        await self._owner.aclose()
