"""The VP's configuration (contract 1): validated once, at the boundary, with pydantic."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from vp.memory_guard import parse_size
from vp.transcriber.engine_packages import engine_unavailable

DEFAULT_NAME = "Meeting Assistant"


def new_vp_id() -> str:
    return uuid.uuid4().hex[:12]


class JoinConfig(BaseModel):
    """Everything ``vp join`` needs. Secrets are SecretStr: they never print."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meeting_url: str = Field(min_length=1, max_length=2048)
    platform: str | None = None
    name: str = Field(default=DEFAULT_NAME, min_length=1, max_length=64)
    passcode: SecretStr | None = None
    transcriber_url: str | None = None
    transcriber_token: SecretStr | None = None
    call_id: str | None = Field(default=None, max_length=256)
    out_dir: Path | None = None
    max_duration: float | None = Field(default=None, gt=0)
    join_timeout: float = Field(default=300.0, gt=0)
    alone_timeout: float = Field(default=120.0, gt=0)
    # Faults (README "Faults survived"): keep retrying an unreachable transcriber this long
    # before FAILED transcriber-unavailable; replay at most this much audio after a drop.
    transcriber_wait: float = Field(default=30.0, gt=0)
    transcriber_buffer: float = Field(default=30.0, gt=0, le=600)
    # A page that answers no evaluate for hang_timeout s counts as crashed; a crashed page or
    # Chromium is relaunched and rejoined once, within rejoin_timeout s.
    hang_timeout: float = Field(default=15.0, gt=0)
    rejoin_timeout: float = Field(default=60.0, gt=0)
    # Capture health (contract 1): the UI shows a participant speaking and the capture hears
    # nothing this long -> a capture.degraded interval (tests shorten it).
    capture_silence_s: float = Field(default=10.0, gt=0)
    json_output: bool = False
    vp_id: str = Field(default_factory=new_vp_id, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    engine: str = Field(default="pocketsphinx", validate_default=True)
    # The assistant (chat). None = the default text; "" disables the message.
    intro_message: str | None = Field(default=None, max_length=1000)
    exit_message: str | None = Field(default=None, max_length=1000)
    invited_by: str | None = Field(default=None, max_length=128)
    assistant_engine: str = "local"
    wake_phrases: tuple[str, ...] = ("OK Assistant", "Okay, Assistant")
    bedrock_model_id: str | None = None
    # The VP's voice (contract 1 --voice): off, or the engine that speaks its intro, answers
    # and exit message. voice_id: espeak-ng's voice (en-us) or Polly's VoiceId (Joanna).
    voice: Literal["off", "espeak-ng", "polly"] = "off"
    voice_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_+-]{1,64}$")
    polly_engine: Literal["standard", "neural", "generative", "long-form"] = "neural"
    # The memory guard's limit in bytes (vp.memory_guard); None = the cgroup's, if any.
    memory_limit: int | None = Field(default=None, gt=0)

    @field_validator("transcriber_url")
    @classmethod
    def _ws_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^wss?://[^\s/]+", value):
            raise ValueError("must be a ws:// or wss:// URL")
        return value

    @field_validator("engine")
    @classmethod
    def _local_engine_installed(cls, value: str, info: ValidationInfo) -> str:
        # Checked before a browser starts: the task image leaves the offline engine out, so
        # a VP there without a transcriber URL would otherwise fail only after joining.
        if info.data.get("transcriber_url") is None:
            missing = engine_unavailable(value)
            if missing:
                raise ValueError(f"{missing}, or give a --transcriber-url")
        return value

    @field_validator("memory_limit", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        value = value.strip()
        if not value or any(not ch.isprintable() for ch in value):
            raise ValueError("must be printable text")
        return value

    @property
    def effective_call_id(self) -> str:
        return self.call_id or f"vp-{self.vp_id}"

    @property
    def effective_out_dir(self) -> Path:
        return self.out_dir or Path("vp-out") / self.vp_id

    def secrets(self) -> list[str]:
        return [
            s.get_secret_value()
            for s in (self.passcode, self.transcriber_token)
            if s is not None and s.get_secret_value()
        ]
