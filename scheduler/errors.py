"""Control-plane errors: part of the one hierarchy rooted at :class:`vp.errors.VpError`.

::

    VpError
    └── ControlPlaneError
        ├── Unauthorized          401      no, or an invalid, bearer token
        ├── InvalidRequest        400/422  a field of a request is invalid (names the field)
        ├── NotFound              404      no such VP, or not the caller's
        ├── StaleTransition       409      the stored status changed, or the lifecycle refused
        ├── IdempotencyConflict   (internal) the key already names a VP: the store returns it
        ├── IdempotencyKeyReused  409      the key was used before for a different request
        ├── RateLimited           429      too many launches by one owner
        └── LaunchError           (internal) a launcher could not start a VP → FAILED launch-failed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vp.errors import VpError
from vp.lifecycle import Reason

if TYPE_CHECKING:
    from scheduler.models import VpRecord


class ControlPlaneError(VpError):
    """Root of the control plane's errors."""


class Unauthorized(ControlPlaneError):
    """The caller did not prove who they are (missing, malformed, expired or forged token)."""


class InvalidRequest(ControlPlaneError):
    """A request field is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(ControlPlaneError):
    """No such VP (or it belongs to another owner: the API never tells the difference)."""


class StaleTransition(ControlPlaneError):
    """A conditional transition failed: the stored status changed or the move is illegal."""


class IdempotencyConflict(ControlPlaneError):
    """``create`` found the owner's idempotency key already used; ``existing`` is that VP."""

    def __init__(self, existing: VpRecord, fingerprint: str | None) -> None:
        super().__init__(f"idempotency key already names VP {existing.vp_id}")
        self.existing = existing
        self.fingerprint = fingerprint


class IdempotencyKeyReused(ControlPlaneError):
    """The idempotency key was used before for a different request."""


class RateLimited(ControlPlaneError):
    """The owner launched too many VPs recently; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many launches; retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class LaunchError(ControlPlaneError):
    """A launcher could not start the VP; it ends FAILED launch-failed."""

    reason = Reason.LAUNCH_FAILED
    retryable = True
