"""Control-plane models (contract 4), validated with pydantic at the boundary.

* :class:`LaunchRequest` — the body of ``POST /v1/vps``. Every error names its field.
* :class:`VpRecord` — the public record of one VP: what the API returns and what stores keep.
  It never carries a secret: the meeting URL is redacted (no ``pwd``/``p`` tokens) and the
  passcode lives apart (:class:`VpSecrets`, a separate table / attribute in each store).
* :class:`StatusObject` — one status object of contract 2, as stored in a record's history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from platforms.registry import platform_names, resolve
from vp.config import DEFAULT_NAME
from vp.errors import InvalidUrl
from vp.lifecycle import Reason, Status, StatusEvent, utc_now_iso
from vp.urls import MAX_URL_LENGTH, redact_url

# A join_at this far in the past is still accepted (clock skew, a slow form): it launches now.
JOIN_AT_GRACE = timedelta(seconds=60)
# Nobody schedules a meeting VP years ahead; such a date is a typo.
JOIN_AT_MAX_AHEAD = timedelta(days=366)
MAX_NAME_LENGTH = 64
MAX_PASSCODE_LENGTH = 256
VP_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """ISO-8601 UTC with a ``Z``, millisecond precision (the status-object style)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LaunchRequest(BaseModel):
    """``POST /v1/vps`` body: ``{platform?, meeting_url, name?, passcode?, join_at?}``.

    Validation context (optional, for tests and the service): ``now`` (aware datetime) and
    ``allowed_hosts`` (frozenset of ``host[:port]``; default ``VP_ALLOWED_HOSTS``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    # platform comes first so meeting_url's validator can see it.
    platform: str | None = Field(
        default=None, description="zoom, teams, meet, webex, chime or janus"
    )
    meeting_url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    passcode: SecretStr | None = Field(default=None, max_length=MAX_PASSCODE_LENGTH)
    join_at: AwareDatetime | None = Field(
        default=None, description="ISO-8601 with a UTC offset; absent = join now"
    )
    _platform: str = PrivateAttr(default="")

    @field_validator("platform")
    @classmethod
    def _known_platform(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        if value not in platform_names():
            raise ValueError(f"unknown platform; known: {', '.join(platform_names())}")
        return value

    @field_validator("meeting_url")
    @classmethod
    def _allowed_url(cls, value: str, info: ValidationInfo) -> str:
        if "platform" not in info.data:
            return value  # the platform itself is invalid; that error is reported already
        context = info.context if isinstance(info.context, dict) else {}
        try:
            resolve(value, info.data["platform"], context.get("allowed_hosts"))
        except InvalidUrl as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        if value is not None and any(not ch.isprintable() for ch in value):
            raise ValueError("must be printable text")
        return value

    @field_validator("passcode")
    @classmethod
    def _printable_passcode(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if not secret or any(not ch.isprintable() for ch in secret):
                raise ValueError("must be non-empty printable text")
        return value

    @field_validator("join_at")
    @classmethod
    def _not_in_past(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        now = context.get("now") or utc_now()
        if value < now - JOIN_AT_GRACE:
            raise ValueError(f"is in the past (more than {JOIN_AT_GRACE.seconds} s ago)")
        if value > now + JOIN_AT_MAX_AHEAD:
            raise ValueError(f"is more than {JOIN_AT_MAX_AHEAD.days} days ahead")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _remember_platform(self, info: ValidationInfo) -> LaunchRequest:
        context = info.context if isinstance(info.context, dict) else {}
        # The field validator accepted the URL with the same inputs; this cannot raise.
        meeting = resolve(self.meeting_url, self.platform, context.get("allowed_hosts"))
        self._platform = meeting.platform
        return self

    @property
    def resolved_platform(self) -> str:
        """The platform given or inferred from the URL."""
        return self._platform

    def fingerprint(self, key: bytes) -> str:
        """A keyed HMAC-SHA256 of the whole normalised request, passcode included, to tell a
        retry from a different request under the same idempotency key. Keyed, so the stored
        value reveals nothing (a short passcode cannot be guessed from it offline)."""
        body = {
            "platform": self.platform,
            "meeting_url": self.meeting_url,
            "name": self.name,
            "passcode": self.passcode.get_secret_value() if self.passcode else None,
            "join_at": iso(self.join_at) if self.join_at else None,
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(key, canonical, hashlib.sha256).hexdigest()


class StatusObject(BaseModel):
    """A status object of contract 2."""

    model_config = ConfigDict(frozen=True)

    ts: str
    vp_id: str
    status: Status
    reason: Reason | None = None
    detail: str | None = None

    @classmethod
    def from_event(cls, event: StatusEvent) -> StatusObject:
        return cls(
            ts=event.ts,
            vp_id=event.vp_id,
            status=event.status,
            reason=event.reason,
            detail=event.detail,
        )

    @classmethod
    def now(
        cls, vp_id: str, status: Status, reason: Reason | None = None, detail: str | None = None
    ) -> StatusObject:
        return cls(ts=utc_now_iso(), vp_id=vp_id, status=status, reason=reason, detail=detail)


class VpRecord(BaseModel):
    """The public record of one VP. No secrets: safe for the API, logs and the console."""

    model_config = ConfigDict(frozen=True)

    vp_id: str = Field(pattern=VP_ID_PATTERN)
    owner: str
    platform: str
    meeting_url: str = Field(description="the meeting URL with secret tokens masked")
    name: str
    join_at: datetime | None = None
    status: Status
    reason: Reason | None = None
    detail: str | None = None
    created_at: datetime
    updated_at: datetime
    history: list[StatusObject] = Field(default_factory=list)

    @property
    def joined(self) -> bool:
        """Whether the VP was JOINED at some point (COMPLETED requires it)."""
        return any(item.status is Status.JOINED for item in self.history)

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def new(
        cls,
        vp_id: str,
        owner: str,
        request: LaunchRequest,
        *,
        now: datetime | None = None,
    ) -> VpRecord:
        """A fresh SCHEDULED record for ``request`` (every VP starts SCHEDULED, even one that
        launches at once: launching is the conditional SCHEDULED → INITIALIZING move)."""
        now = now or utc_now()
        first = StatusObject(ts=iso(now), vp_id=vp_id, status=Status.SCHEDULED)
        return cls(
            vp_id=vp_id,
            owner=owner,
            platform=request.resolved_platform,
            meeting_url=redact_url(request.meeting_url),
            name=request.name or DEFAULT_NAME,
            join_at=request.join_at,
            status=Status.SCHEDULED,
            created_at=now,
            updated_at=now,
            history=[first],
        )

    def public(self) -> dict[str, Any]:
        """The JSON the API returns."""
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class VpSecrets:
    """What a VP needs to join that the public record must not show.

    ``meeting_url`` is the URL exactly as requested (it may carry ``pwd``/``p`` tokens);
    ``passcode`` the meeting passcode, if any. Stores keep this apart from the record and
    the API never returns it; ``__repr__`` masks both so it cannot leak into a log.
    """

    meeting_url: str
    passcode: str | None = None

    def __repr__(self) -> str:
        return f"VpSecrets(meeting_url={redact_url(self.meeting_url)!r}, passcode=***)"
