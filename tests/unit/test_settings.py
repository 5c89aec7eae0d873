"""The one settings model of the VP_* environment, and the one validation-error formatter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from vp.cli import _join_config, build_parser
from vp.errors import describe_validation_error
from vp.settings import JOIN_FIELDS, VpSettings

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_1 = [
    "VP_MEETING_URL",
    "VP_PLATFORM",
    "VP_NAME",
    "VP_PASSCODE",
    "VP_TRANSCRIBER_URL",
    "VP_TRANSCRIBER_TOKEN",
    "VP_CALL_ID",
    "VP_OUT_DIR",
    "VP_MAX_DURATION",
    "VP_JOIN_TIMEOUT",
    "VP_ALLOWED_HOSTS",
]


def variables() -> set[str]:
    return {VpSettings.variable(name) for name in VpSettings.model_fields}


def test_every_variable_the_code_reads_is_a_field_with_contract_1_names() -> None:
    assert set(CONTRACT_1) <= variables()
    # Constants that merely start with VP_ are not variables.
    constants = {"VP_ID_PARAM", "VP_ID_PATTERN", "VP_DISABLED_FEATURES", "VP_BIN"}
    mentioned = set()
    for folder in ("vp", "scheduler", "platforms"):
        for path in (ROOT / folder).rglob("*.py"):
            mentioned |= set(re.findall(r"\bVP_[A-Z_]+[A-Z]\b", path.read_text()))
    assert mentioned - constants <= variables(), mentioned - constants - variables()
    # 45 + four artifact + six webhook/calendar variables (issue 16) + two voice (issue 15)
    # + VP_MEMORY_LIMIT and VP_INCOMING_VIDEO (issue 18)
    assert len(variables()) == 58


def test_the_environment_and_a_mapping_read_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "VP_MAX_DURATION": "90",
        "VP_WAKE_PHRASES": "Hey Bot|OK Bot",
        "VP_INTRO_MESSAGE": "",  # '' disables the message
        "VP_NAME": "",  # '' is unset
        "VP_TRANSCRIBER_TOKEN": "s3cr3t-value",
        "VP_HEADLESS_SHELL": "0",
        "OTHER": "ignored",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from_os = VpSettings()
    assert from_os == VpSettings.from_env(env)
    assert from_os.max_duration == 90.0 and from_os.wake_phrases == ("Hey Bot", "OK Bot")
    assert from_os.intro_message == "" and from_os.name is None
    assert from_os.headless_shell is False
    assert "s3cr3t-value" not in repr(from_os)
    fields = from_os.join_fields()
    assert set(fields) == {"max_duration", "wake_phrases", "intro_message", "transcriber_token"}
    assert set(fields) <= set(JOIN_FIELDS)


def test_a_mapping_is_read_instead_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VP_MAX_DURATION", "soon")
    monkeypatch.setenv("VP_DB", "from-os.db")
    assert VpSettings.from_env({"VP_DB": "given.db"}).db == "given.db"
    assert VpSettings.from_env({}).max_duration is None
    assert VpSettings.from_env(only=frozenset({"db"})).db == "from-os.db"
    with pytest.raises(ValidationError):
        VpSettings.from_env()


def test_a_bad_value_names_its_variable_and_only_skips_unrelated_ones() -> None:
    env = {"VP_MAX_DURATION": "soon", "VP_CAPTURE_TRANSPORT": "pigeon", "VP_DB": "x.db"}
    with pytest.raises(ValidationError) as info:
        VpSettings.from_env(env)
    assert describe_validation_error(info.value, names_only=True) == (
        "VP_CAPTURE_TRANSPORT, VP_MAX_DURATION"
    )
    assert "VP_MAX_DURATION: Input should be a valid number" in describe_validation_error(
        info.value
    )
    assert VpSettings.from_env(env, only=frozenset({"db"})).db == "x.db"


def test_join_options_win_over_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VP_MEETING_URL", "https://zoom.us/j/1")
    monkeypatch.setenv("VP_NAME", "From Env")
    monkeypatch.setenv("VP_JOIN_TIMEOUT", "12")
    monkeypatch.setenv("VP_WAKE_PHRASES", "a|b")
    args = build_parser().parse_args(["join", "--name", "From CLI", "--wake-phrase", "c"])
    config = _join_config(args, VpSettings())
    assert config.meeting_url == "https://zoom.us/j/1" and config.name == "From CLI"
    assert config.join_timeout == 12.0 and config.wake_phrases == ("c",)


def test_the_formatter_joins_locations_and_never_quotes_the_input() -> None:
    class Model(BaseModel):
        passcode: int
        nested: dict[str, int]

    with pytest.raises(ValidationError) as info:
        Model.model_validate({"passcode": "secret-123", "nested": {"k": "v"}})
    text = describe_validation_error(info.value)
    assert text.startswith("passcode: Input should be a valid integer")
    assert "; nested.k: " in text and "secret-123" not in text
    assert describe_validation_error(info.value, names_only=True) == "nested, passcode"


def test_a_local_transcriber_engine_that_is_not_installed_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from vp.config import JoinConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "pocketsphinx" else real(n, *a)
    )
    with pytest.raises(ValidationError) as refused:
        JoinConfig(meeting_url="http://127.0.0.1:9/room")
    assert "vp[local]" in describe_validation_error(refused.value)
    # With a transcriber URL the local engine is not needed.
    JoinConfig(meeting_url="http://127.0.0.1:9/room", transcriber_url="ws://127.0.0.1:9/ws")


def test_voice_defaults_off_and_reads_option_then_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VP_MEETING_URL", "https://zoom.us/j/1")
    assert _join_config(build_parser().parse_args(["join"]), VpSettings()).voice == "off"
    monkeypatch.setenv("VP_VOICE", "polly")
    monkeypatch.setenv("VP_VOICE_ID", "Matthew")
    config = _join_config(build_parser().parse_args(["join"]), VpSettings())
    assert (config.voice, config.voice_id, config.polly_engine) == ("polly", "Matthew", "neural")
    args = build_parser().parse_args(["join", "--voice", "espeak-ng", "--voice-id", "en-gb"])
    config = _join_config(args, VpSettings())
    assert (config.voice, config.voice_id) == ("espeak-ng", "en-gb")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["join", "--voice", "festival"])
