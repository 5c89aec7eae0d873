"""The VP's own AWS clients (Bedrock for the assistant, Polly for the voice): one setup.

boto3 comes with the ``[aws]`` extra (the task image has it); it is imported only when a
client is first needed, so a VP that uses neither service never loads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from vp.errors import VpError

CONNECT_TIMEOUT_S = 3
MAX_ATTEMPTS = 2

T = TypeVar("T")


def aws_client(
    service: str,
    region: str | None,
    read_timeout_s: float,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A boto3 client for ``service`` with bounded timeouts and retries, or ``factory()`` when
    given (tests)."""
    if factory is not None:
        return factory()
    try:
        import boto3
        from botocore.config import Config
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(f"{service} needs boto3: pip install 'vp[aws]'") from exc
    config = Config(
        read_timeout=read_timeout_s,
        connect_timeout=CONNECT_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client(service, region_name=region, config=config)


def error_code(exc: Exception) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (None for any other error)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


class AwsCallFailed(VpError):
    """A bounded AWS call that gave no answer: it timed out (``timed_out``, worth retrying)
    or raised.

    ``code`` is the AWS error code of a botocore ``ClientError`` (None for a timeout or any
    other error); ``label`` names the failure for logs: the code, else the exception's type."""

    def __init__(self, code: str | None, label: str, *, timed_out: bool = False) -> None:
        super().__init__(label)
        self.retryable = timed_out
        self.code = code
        self.label = label
        self.timed_out = timed_out


async def call_aws(call: Callable[[], T], timeout_s: float) -> T:
    """``call()`` — the blocking boto3 work: get the client, send the request, read the
    answer — in a worker thread, bounded by ``timeout_s``; any failure is :class:`AwsCallFailed`
    (chained to the error it stands for)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(call), timeout_s)
    except TimeoutError:
        raise AwsCallFailed(None, "timeout", timed_out=True) from None
    except Exception as exc:
        code = error_code(exc)
        raise AwsCallFailed(code, code or type(exc).__name__) from exc
