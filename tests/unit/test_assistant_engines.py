"""The assistant engines: local on a fixed transcript; Bedrock at its boundary (Stubber)."""

import boto3
import pytest
from botocore.stub import ANY, Stubber

from vp.assistant.engines import (
    APOLOGY_BUSY,
    APOLOGY_FAILED,
    HELP,
    BedrockEngine,
    LocalEngine,
    MeetingContext,
    Utterance,
    create_engine,
)

TRANSCRIPT = (
    Utterance("Alice", "Welcome everyone to the weekly planning meeting.", 0.0),
    Utterance("Bob", "The budget review is on track. I will send the numbers by Friday.", 5.0),
    Utterance("Alice", "Great. We need to finalize the release schedule next week.", 12.0),
    Utterance("Carol", "Sounds good to me.", 20.0),
    Utterance("Bob", "Also the hiring plan is delayed until March because of approvals.", 25.0),
)
CONTEXT = MeetingContext(
    vp_name="Scribe", participants=("Alice", "Bob", "Carol", "Scribe"), transcript=TRANSCRIPT
)


async def ask(question, context=CONTEXT):
    return await LocalEngine().answer(question, context)


async def test_local_who_is_here():
    answer = await ask("who is here?")
    assert "Alice, Bob, Carol" in answer and answer.count("Scribe") == 1


async def test_local_what_did_someone_say():
    answer = await ask("what did bob say")
    assert "I will send the numbers by Friday" in answer and "hiring plan" in answer
    assert "Welcome" not in answer
    missing = await ask("what did Dave say?")
    assert "haven’t heard anything from Dave" in missing and "Alice" in missing


async def test_local_action_items():
    answer = await ask("action items?")
    assert "Bob: I will send the numbers by Friday." in answer
    assert "Alice: We need to finalize the release schedule next week." in answer
    assert "Sounds good" not in answer and "Welcome" not in answer


async def test_local_summary_by_speaker():
    answer = await ask("summarize")
    assert answer.startswith("Summary so far")
    for name in ("Alice:", "Bob:"):
        assert name in answer
    assert "hiring plan is delayed until March" in answer
    assert await ask("recap") == answer


async def test_local_help_and_unknown_and_empty():
    assert await ask("help") == HELP
    assert await ask("") == HELP
    unknown = await ask("what is the capital of France")
    assert "can’t answer" in unknown and HELP in unknown
    empty = MeetingContext(vp_name="Scribe")
    assert "Nothing to summarize" in await ask("summary", empty)
    assert "Only me" in await ask("who is here", empty)


async def test_local_is_deterministic():
    assert [await ask("summarize") for _ in range(3)] == [await ask("summarize")] * 3


def stubbed(**kw):
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    stub = Stubber(client)
    engine = BedrockEngine(model_id="test-model", client_factory=lambda: client, **kw)
    return engine, stub


OK_RESPONSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Bob sends numbers."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
    "metrics": {"latencyMs": 100},
}


async def test_bedrock_request_shape_and_answer():
    engine, stub = stubbed()
    expected = engine.request("action items?", CONTEXT)
    assert expected["modelId"] == "test-model"
    prompt = expected["messages"][0]["content"][0]["text"]
    assert "Participants: Alice, Bob, Carol" in prompt
    assert "Bob: The budget review is on track." in prompt and prompt.endswith(
        "Question: action items?"
    )
    assert "Scribe" in expected["system"][0]["text"]
    stub.add_response("converse", OK_RESPONSE, expected)
    with stub:
        assert await engine.answer("action items?", CONTEXT) == "Bob sends numbers."
    stub.assert_no_pending_responses()


async def test_bedrock_context_is_bounded_to_the_most_recent_lines():
    engine, _ = stubbed(max_context_chars=120)
    long = tuple(Utterance("Alice", f"sentence number {i} " + "x" * 30) for i in range(100))
    prompt = engine.request("recap", MeetingContext("Scribe", ("Alice",), long))["messages"][0][
        "content"
    ][0]["text"]
    assert "sentence number 99" in prompt and "sentence number 90" not in prompt
    transcript = prompt.split("Transcript so far (most recent last):\n")[1].split("\n\n")[0]
    assert len(transcript) <= 120


@pytest.mark.parametrize(
    ("code", "apology"),
    [
        ("ThrottlingException", APOLOGY_BUSY),
        ("ModelTimeoutException", APOLOGY_BUSY),
        ("ServiceUnavailableException", APOLOGY_BUSY),
        ("AccessDeniedException", APOLOGY_FAILED),
        ("ValidationException", APOLOGY_FAILED),
    ],
)
async def test_bedrock_errors_become_apologies(code, apology):
    engine, stub = stubbed()
    stub.add_client_error(
        "converse",
        service_error_code=code,
        http_status_code=400,
        expected_params={
            "modelId": "test-model",
            "system": ANY,
            "messages": ANY,
            "inferenceConfig": ANY,
        },
    )
    with stub:
        assert await engine.answer("who is here", CONTEXT) == apology


async def test_bedrock_timeout_becomes_apology():
    import time

    class Slow:
        def converse(self, **_):
            time.sleep(1.0)
            return OK_RESPONSE

    engine = BedrockEngine(client_factory=Slow, timeout_s=0.3)
    assert await engine.answer("who", CONTEXT) == APOLOGY_BUSY


def test_registry():
    assert isinstance(create_engine("local"), LocalEngine)
    with pytest.raises(ValueError, match="unknown assistant engine"):
        create_engine("gpt")
