"""Every ``VP_*`` environment variable vp reads, in one pydantic-settings model.

The variable names are contract 1's (``VP_MEETING_URL`` … ``VP_JOIN_TIMEOUT`` and the rest of
``vp join``'s options) plus the operational ones below; each field's alias IS its variable,
so this model is the one map between the environment and vp's settings. ``vp join`` (vp/cli.py)
and ``vp pool`` fill options not given on the command line from it, ``vp run``
(scheduler/run.py) builds the task's JoinConfig from it, ``vp serve`` takes its store and
secret from it, and the browser and capture read their knobs from it.

An empty variable counts as unset, except ``VP_INTRO_MESSAGE`` and ``VP_EXIT_MESSAGE``, where
``''`` disables the message. Values are only parsed here (a number is a number); their limits
are :class:`~vp.config.JoinConfig`'s, checked where a config is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# Fields of JoinConfig that ``vp join`` and ``vp run`` take from the environment, in the
# order of ``vp join``'s options. ``vp run`` takes the meeting (URL, platform, name,
# passcode) and the VP id from the store instead: see JoinSettings.join_fields().
JOIN_FIELDS = (
    "meeting_url",
    "platform",
    "name",
    "passcode",
    "transcriber_url",
    "transcriber_token",
    "call_id",
    "out_dir",
    "max_duration",
    "join_timeout",
    "alone_timeout",
    "transcriber_wait",
    "transcriber_buffer",
    "vp_id",
    "engine",
    "intro_message",
    "exit_message",
    "invited_by",
    "assistant_engine",
    "wake_phrases",
    "bedrock_model_id",
    "voice",
    "voice_id",
    "polly_engine",
    "memory_limit",
)
MEETING_FIELDS = frozenset({"meeting_url", "platform", "name", "passcode", "vp_id"})
_KEEP_EMPTY = frozenset({"VP_INTRO_MESSAGE", "VP_EXIT_MESSAGE"})  # '' disables the message


# The variables from_env() reads instead of os.environ, for the one call it makes.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("vp_settings_environ", default=None)


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source that reads variables from a mapping (a task's, a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        alias = field.validation_alias
        name = str(alias.choices[0]) if isinstance(alias, AliasChoices) else field_name
        return self._environ.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


def _env(name: str, description: str = "") -> Any:
    """A field read from the environment variable ``name`` (and settable by field name)."""
    return Field(default=None, validation_alias=AliasChoices(name), description=description)


class VpSettings(BaseSettings):
    """The ``VP_*`` environment. ``VpSettings()`` reads ``os.environ``;
    :meth:`from_env` reads any mapping (a task's environment, a test's)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # -- contract 1: `vp join` -------------------------------------------------------------
    meeting_url: str | None = _env("VP_MEETING_URL")
    platform: str | None = _env("VP_PLATFORM")
    name: str | None = _env("VP_NAME")
    passcode: SecretStr | None = _env("VP_PASSCODE")
    transcriber_url: str | None = _env("VP_TRANSCRIBER_URL")
    transcriber_token: SecretStr | None = _env("VP_TRANSCRIBER_TOKEN")
    call_id: str | None = _env("VP_CALL_ID")
    out_dir: Path | None = _env("VP_OUT_DIR")
    max_duration: float | None = _env("VP_MAX_DURATION")
    join_timeout: float | None = _env("VP_JOIN_TIMEOUT")
    alone_timeout: float | None = _env("VP_ALONE_TIMEOUT")
    transcriber_wait: float | None = _env("VP_TRANSCRIBER_WAIT", "s to retry a transcriber")
    transcriber_buffer: float | None = _env("VP_TRANSCRIBER_BUFFER", "s of audio to replay")
    vp_id: str | None = _env("VP_ID")
    engine: str | None = _env("VP_TRANSCRIBER_ENGINE", "the local transcriber's engine")
    intro_message: str | None = _env("VP_INTRO_MESSAGE")
    exit_message: str | None = _env("VP_EXIT_MESSAGE")
    invited_by: str | None = _env("VP_INVITED_BY")
    assistant_engine: str | None = _env("VP_ASSISTANT_ENGINE")
    wake_phrases: Annotated[tuple[str, ...] | None, NoDecode] = _env(
        "VP_WAKE_PHRASES", "'|'-separated"
    )
    bedrock_model_id: str | None = _env("VP_BEDROCK_MODEL_ID")
    allowed_hosts: str | None = _env("VP_ALLOWED_HOSTS", "host[:port],… added to the allow-list")
    voice: Literal["off", "espeak-ng", "polly"] | None = _env("VP_VOICE", "contract 1 --voice")
    voice_id: str | None = _env("VP_VOICE_ID", "espeak-ng voice or Polly VoiceId")
    polly_engine: str | None = _env("VP_POLLY_ENGINE", "standard|neural|generative|long-form")
    memory_limit: str | None = _env("VP_MEMORY_LIMIT", "bytes or 512M; default the cgroup's")

    # -- the process ----------------------------------------------------------------------
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("VP_LOG_LEVEL"))

    # -- control plane: `vp run`, `vp serve`, the Lambda handlers ---------------------------
    db: str | None = _env("VP_DB", "SQLite store (vp run, vp serve)")
    auth_secret: SecretStr | None = _env("VP_AUTH_SECRET", "HS256 secret of vp serve's JWTs")
    table_name: str | None = _env("VP_TABLE_NAME", "DynamoDB table (AWS)")
    table_owner_index: str | None = _env("VP_TABLE_OWNER_INDEX")
    passcode_kms_key_id: str | None = _env("VP_PASSCODE_KMS_KEY_ID")
    record_ttl_days: float | None = _env("VP_RECORD_TTL_DAYS")
    # AWS only: the task's broker and its one-time ticket (scheduler/broker.py), the ticket
    # issuer's bucket, the launcher's pre-start lead, the API's per-owner limits
    # (scheduler/dynamodb_limits.py) and its idempotency fingerprint key.
    broker_function: str | None = _env("VP_BROKER_FUNCTION", "the broker Lambda (vp run)")
    launch_ticket: SecretStr | None = _env("VP_LAUNCH_TICKET", "the task's one-time ticket")
    ticket_bucket_arn: str | None = _env("VP_TICKET_BUCKET_ARN")
    prestart_lead_seconds: float | None = _env("VP_PRESTART_LEAD_SECONDS")
    owner_launches: int | None = _env("VP_OWNER_LAUNCHES", "launches per owner per window")
    owner_launch_window: int | None = _env("VP_OWNER_LAUNCH_WINDOW", "seconds")
    owner_max_active: int | None = _env("VP_OWNER_MAX_ACTIVE", "active VPs per owner")
    fingerprint_key_secret_arn: str | None = _env(
        "VP_FINGERPRINT_KEY_SECRET_ARN", "the API's fingerprint key secret (required on AWS)"
    )
    # Contract 5, webhooks and calendars (scheduler/hooks.py, scheduler/aws_hooks.py): the
    # hooks table and the delivery queue (AWS), the retry window and the URL-rule exemptions.
    hooks_table_name: str | None = _env("VP_HOOKS_TABLE_NAME", "webhooks/calendars table (AWS)")
    webhook_queue_url: str | None = _env("VP_WEBHOOK_QUEUE_URL", "webhook delivery queue (AWS)")
    webhook_retry_hours: float | None = _env("VP_WEBHOOK_RETRY_HOURS", "hours (24)")
    webhook_allowed_hosts: str | None = _env(
        "VP_WEBHOOK_ALLOWED_HOSTS", "host[:port],… exempt from the webhook URL rules"
    )
    calendar_allowed_hosts: str | None = _env(
        "VP_CALENDAR_ALLOWED_HOSTS", "host[:port],… exempt from the calendar feed URL rules"
    )
    # AWS only: artifacts (scheduler/artifacts.py) — the bucket the task uploads to and the API
    # presigns from, seconds between the task's upload rounds, and the broker's bucket ARN and
    # the writer role it assumes for a task's scoped credentials.
    artifact_bucket: str | None = _env("VP_ARTIFACT_BUCKET", "artifact bucket (AWS)")
    artifact_upload_interval: float | None = _env("VP_ARTIFACT_UPLOAD_INTERVAL", "seconds")
    artifact_bucket_arn: str | None = _env("VP_ARTIFACT_BUCKET_ARN")
    artifact_writer_role_arn: str | None = _env("VP_ARTIFACT_WRITER_ROLE_ARN")

    # -- the local transcriber -------------------------------------------------------------
    transcriber_jwt_secret: SecretStr | None = _env("VP_TRANSCRIBER_JWT_SECRET")
    transcribe_language: str | None = _env("VP_TRANSCRIBE_LANGUAGE", "aws-transcribe engine")

    # -- browser, capture, the local meeting (operations, experiments, tests) -------------
    chromium: str | None = _env("VP_CHROMIUM", "the Chromium binary")
    headless_shell: bool = Field(default=True, validation_alias=AliasChoices("VP_HEADLESS_SHELL"))
    chromium_args: str | None = _env("VP_CHROMIUM_ARGS", "extra Chromium flags")
    capture_transport: Literal["auto", "binding"] | None = _env("VP_CAPTURE_TRANSPORT")
    # Incoming video: suppressed per platform (vp/incoming_video.py); "receive" turns that off.
    incoming_video: Literal["suppress", "receive"] | None = _env("VP_INCOMING_VIDEO")
    janus: str | None = _env("VP_JANUS", "the janus binary")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v != "" or k in _KEEP_EMPTY}
        return data

    @field_validator("wake_phrases", mode="before")
    @classmethod
    def _split_phrases(cls, value: Any) -> Any:
        return tuple(value.split("|")) if isinstance(value, str) else value

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, only: frozenset[str] | None = None
    ) -> VpSettings:
        """The settings in ``env`` (default ``os.environ``); raises ValidationError naming
        the variables that do not parse. ``only``: read just these fields (the others keep
        their defaults), for a step that must not fail on an unrelated bad variable."""
        env = os.environ if env is None else env
        wanted = {cls.variable(name) for name in only} if only is not None else None
        variables = {
            k: v for k, v in env.items() if k.startswith("VP_") and (wanted is None or k in wanted)
        }
        token = _ENVIRON.set(variables)
        try:
            return cls()
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment: os.environ, or :meth:`from_env`'s mapping.
        No .env file or secrets directory: a VP is configured by its environment only."""
        environ = _ENVIRON.get()
        if environ is None:
            return (init_settings, env_settings)
        return (init_settings, _MappingSource(settings_cls, environ))

    def join_fields(self, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The JoinConfig keyword arguments the environment sets (unset ones left out)."""
        return {
            name: getattr(self, name)
            for name in JOIN_FIELDS
            if name not in exclude and getattr(self, name) is not None
        }

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of field ``name`` (for messages and docs)."""
        alias = VpSettings.model_fields[name].validation_alias
        assert isinstance(alias, AliasChoices)
        return str(alias.choices[0])
