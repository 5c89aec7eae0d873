"""The assistant's decisions, with a fake chat and the deterministic local engine."""

import asyncio

from vp.assistant.assistant import AssistantSettings, MeetingAssistant
from vp.assistant.engines import LocalEngine


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def make(**settings):
    posted: list[tuple[str, bool]] = []
    ended: list[str] = []

    async def post(text, assistant):
        posted.append((text, assistant))

    clock = Clock()
    assistant = MeetingAssistant(
        AssistantSettings(vp_name="Scribe", **settings),
        LocalEngine(),
        post,
        ended.append,
        clock=clock,
        participants=("Alice", "Bob", "Scribe"),
    )
    return assistant, posted, ended, clock


async def settle(assistant):
    for _ in range(20):
        await asyncio.sleep(0)


async def test_intro_once_and_exit_once_and_disable():
    assistant, posted, _, _ = make(invited_by="Dana")
    await assistant.introduce()
    await assistant.introduce()
    await assistant.say_goodbye()
    await assistant.say_goodbye()
    assert len(posted) == 2
    intro = posted[0][0]
    assert "Scribe" in intro and "invited by Dana" in intro and "“Scribe leave”" in intro
    assert posted[1][0] == "Scribe has left the meeting. Thanks, everyone!"
    quiet, posted2, _, _ = make(intro_message="", exit_message=None)
    await quiet.introduce()
    await quiet.say_goodbye()
    assert posted2 == []


async def test_end_command_thanks_sender_then_ends():
    assistant, posted, ended, _ = make()
    assistant.on_chat("Alice", "please don't make Scribe leave yet")
    assistant.on_chat("Alice", "@scribe leave")
    await settle(assistant)
    assert ended == ["Alice"]
    assert posted == [("Thanks Alice — I’ll head out now.", False)]
    assistant.on_chat("Bob", "OK Assistant who is here")  # leaving: no more answers
    await settle(assistant)
    assert len(posted) == 1


async def test_question_in_chat_gets_prefixed_answer():
    assistant, posted, _, _ = make()
    assistant.on_chat("Alice", "OK Assistant, who is here?")
    await settle(assistant)
    ((text, is_assistant),) = posted
    assert is_assistant and text.startswith("🤖 Scribe (assistant): ")
    assert "Alice, Bob" in text


async def test_spoken_question_uses_transcript_and_dedups_with_chat():
    assistant, posted, _, clock = make()
    assistant.on_transcript("Bob", "I will send the budget by Friday.")
    assistant.on_transcript("Alice", "Okay assistant, action items")
    assistant.on_chat("Alice", "OK Assistant: action items?")  # same question, typed
    await settle(assistant)
    assert len(posted) == 1 and "Bob: I will send the budget by Friday." in posted[0][0]
    assert assistant.stats.duplicates == 1
    clock.t += 31  # outside the dedup window it is a new question
    assistant.on_chat("Alice", "OK Assistant: action items?")
    await settle(assistant)
    assert len(posted) == 2


async def test_never_answers_itself():
    assistant, posted, ended, _ = make()
    assistant.on_chat("Scribe", "OK Assistant who is here")
    assistant.on_chat("Someone", "🤖 Scribe (assistant): OK Assistant who is here")
    assistant.on_chat("Scribe", "Scribe leave")
    await settle(assistant)
    assert posted == [] and ended == []


async def test_rate_limit_per_minute():
    assistant, posted, _, clock = make(max_replies_per_minute=3)
    for i in range(6):
        assistant.on_chat("Alice", f"OK Assistant what did person{i} say")
    await settle(assistant)
    assert len(posted) == 3 and assistant.stats.rate_limited == 3
    clock.t += 61
    assistant.on_chat("Alice", "OK Assistant help")
    await settle(assistant)
    assert len(posted) == 4


async def test_long_answers_are_split_to_the_chat_limit():
    assistant, posted, _, _ = make(chat_limit=60)
    for i in range(10):
        assistant.on_transcript("Bob", f"I will do task number {i} by Friday.")
    assistant.on_chat("Alice", "OK Assistant action items")
    await settle(assistant)
    assert len(posted) > 1 and all(len(t) <= 60 for t, _ in posted)


async def test_chat_text_is_never_executed():
    assistant, posted, ended, _ = make()
    hostile = "OK Assistant __import__('os').system('touch /tmp/pwned') ${7*7} <script>"
    assistant.on_chat("Mallory", hostile)
    await settle(assistant)
    assert ended == [] and len(posted) == 1 and "can’t answer" in posted[0][0]
