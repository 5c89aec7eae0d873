"""The one exception hierarchy of vp.

Every error knows whether retrying could help and which contract REASON it ends a VP with::

    VpError
    ├── InvalidUrl                   permanent  invalid-url
    ├── ConfigError                  permanent  (usage error, exit 1)
    ├── JoinError                    permanent  meeting-not-found | wrong-passcode | denied |
    │                                           login-required | captcha | blocked |
    │                                           waiting-room-timeout
    ├── BrowserCrashed               retryable  browser-crashed
    ├── TranscriberUnavailable       retryable  transcriber-unavailable
    ├── InvalidTransition            permanent  internal-error (a bug: the lifecycle refused it)
    ├── AwsCallFailed                retryable if it timed out (vp.aws_clients: Bedrock,
    │                                Polly; their callers answer with an apology or in chat)
    └── InternalError                permanent  internal-error
"""

from __future__ import annotations

from pydantic import ValidationError

from vp.lifecycle import Reason


class VpError(Exception):
    """Root of every error vp raises on purpose."""

    reason: Reason = Reason.INTERNAL_ERROR
    retryable: bool = False

    def __init__(self, message: str, *, reason: Reason | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason

    @property
    def detail(self) -> str:
        """A short, secret-free sentence for the status object."""
        return str(self)


class ConfigError(VpError):
    """The command line or environment is unusable (exit code 1)."""


class InvalidUrl(VpError):
    """The meeting URL is malformed, of an unknown platform, or not on the allow-list."""

    reason = Reason.INVALID_URL


class JoinError(VpError):
    """The meeting refused us; the reason says how (wrong passcode, denied, …)."""


class BrowserCrashed(VpError):
    """Chromium or the meeting page died under us."""

    reason = Reason.BROWSER_CRASHED
    retryable = True


class TranscriberUnavailable(VpError):
    """The transcriber could not be reached within the retry bound."""

    reason = Reason.TRANSCRIBER_UNAVAILABLE
    retryable = True


class InvalidTransition(VpError):
    """The lifecycle state machine refused a transition."""


class InternalError(VpError):
    """Anything else; always a bug worth reporting."""


def describe_validation_error(exc: ValidationError, *, names_only: bool = False) -> str:
    """One line for a pydantic ValidationError, the same everywhere vp reports one.

    ``loc: message; loc: message`` — pydantic's messages never quote the input, so no value
    (a passcode, a token) is repeated. ``names_only``: just the distinct field names, sorted
    (``a, b``), where even the messages say too much or too little (a status detail).
    """
    errors = exc.errors()
    if names_only:
        return ", ".join(sorted({str(err["loc"][0]) for err in errors if err["loc"]}))
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or '(input)'}: {err['msg']}" for err in errors
    )
