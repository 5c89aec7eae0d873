"""The meeting assistant in one call (platforms with chat), wired to the VP.

:class:`CallAssistant` builds the :class:`~vp.assistant.assistant.MeetingAssistant` from the
VP's configuration, posts its messages through the VP's chat (and speaks its answers when the
VP has a voice), ends the call on the end command, and owns the intro's task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vp.assistant.assistant import DEFAULT_EXIT, DEFAULT_INTRO, AssistantSettings, MeetingAssistant
from vp.assistant.engines import create_engine
from vp.call_end import CallEnd
from vp.call_part import CallPart
from vp.call_voice import CallVoice
from vp.config import JoinConfig
from vp.lifecycle import Reason
from vp.tasks import TaskOwner
from vp.transcriber.protocol import TranscriptSegment

PostChat = Callable[[str, bool], Awaitable[None]]  # (text, is_assistant_reply)


def build_assistant(
    cfg: JoinConfig,
    *,
    chat_limit: int,
    post: PostChat,
    on_end_command: Callable[[str], None],
    participants: tuple[str, ...],
) -> MeetingAssistant:
    """The meeting assistant of a VP whose platform has chat, configured by ``cfg``."""
    options = {}
    if cfg.assistant_engine == "bedrock" and cfg.bedrock_model_id:
        options["model_id"] = cfg.bedrock_model_id
    settings = AssistantSettings(
        vp_name=cfg.name,
        intro_message=DEFAULT_INTRO if cfg.intro_message is None else cfg.intro_message,
        exit_message=DEFAULT_EXIT if cfg.exit_message is None else cfg.exit_message,
        invited_by=cfg.invited_by,
        wake_phrases=cfg.wake_phrases,
        chat_limit=chat_limit,
    )
    return MeetingAssistant(
        settings,
        create_engine(cfg.assistant_engine, **options),
        post=post,
        on_end_command=on_end_command,
        participants=participants,
    )


class CallAssistant(CallPart):
    """Started right after JOINED; :meth:`aclose` cancels and awaits its tasks."""

    def __init__(
        self,
        cfg: JoinConfig,
        *,
        chat_limit: int,
        post_chat: PostChat,
        voice: CallVoice | None,
        end: CallEnd,
        participants: tuple[str, ...],
    ) -> None:
        self._post_chat = post_chat
        self._voice = voice
        self.assistant = build_assistant(
            cfg,
            chat_limit=chat_limit,
            post=self._post,
            on_end_command=lambda _sender: end.conclude(
                Reason.END_COMMAND, "asked to leave in the meeting chat"
            ),
            participants=participants,
        )
        self._owner = TaskOwner()

    def start(self) -> None:
        """Post the intro (an owned task)."""
        self._owner.spawn(self.assistant.introduce(), "assistant-intro")

    async def _post(self, text: str, assistant: bool) -> None:
        await self._post_chat(text, assistant)
        if assistant and self._voice is not None:
            self._voice.say_answer(text.removeprefix(self.assistant.settings.prefix))

    def on_participants(self, names: tuple[str, ...]) -> None:
        self.assistant.participants = names

    def on_chat(self, sender: str, text: str) -> None:
        self.assistant.on_chat(sender, text)

    def on_segment(self, segment: TranscriptSegment) -> None:
        """Final segments of what the meeting said (ch0) may ask the assistant something."""
        if not segment.is_partial and segment.channel == "CALLER":
            self.assistant.on_transcript(segment.speaker, segment.transcript)

    async def say_goodbye(self) -> None:
        """Post the exit message (the VP is still in the meeting)."""
        await self.assistant.say_goodbye()

    async def stop_answering(self) -> None:
        """Leaving: the assistant's own tasks (answers in progress) end here."""
        await self.assistant.aclose()

    async def aclose(self) -> None:
        await self._owner.aclose()
        await self.assistant.aclose()
