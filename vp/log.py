"""structlog JSON logging with the VP's context bound and secrets scrubbed.

Every line is one JSON object on stderr. ``vp_id`` and ``platform`` are bound through
contextvars, so every log line of a VP carries them. Secrets never reach a line: values of
secret-looking keys are masked, and every registered secret value (passcode, token) is
replaced wherever it appears in any string — including URLs and exception texts.

Python's standard ``logging`` (asyncio's "Task exception was never retrieved", uvicorn,
websockets, botocore) goes through the same processors: the root logger's one handler
renders its records with structlog's ``ProcessorFormatter``, so a library's message and
traceback are scrubbed exactly like our own lines.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

import structlog

MASK = "***"
_HANDLER_NAME = "vp-scrubbed-json"
_SECRET_KEY = re.compile(r"pass(code|word|wd)?|pwd|token|secret|authorization|credential", re.I)
_secret_values: set[str] = set()


_ordered: list[str] = []  # longest first, so a secret inside another one never unmasks it


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from every log line from now on (ignores empty and tiny values), also
    as it appears percent-encoded in a URL."""
    if value and len(value) >= 3:
        _secret_values.update({value, quote(value, safe=""), quote_plus(value)})
        _ordered[:] = sorted(_secret_values, key=len, reverse=True)


def scrub(text: str) -> str:
    """Replace every registered secret value in ``text``."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrub_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and value not in (None, "", False):
        return MASK
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(key, v) for v in value]
    return value


def _scrub_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub_value(key, value)
    return event_dict


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog and stdlib logging (libraries) to write scrubbed JSON lines."""
    out = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _scrub_processor,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries (websockets, asyncio) log through stdlib; keep them quiet unless debugging,
    # and never let them bypass the scrubber.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _scrub_processor,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # configure() again (tests): one handler, the new stream
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))


def bind_vp(vp_id: str, platform: str) -> None:
    structlog.contextvars.bind_contextvars(vp_id=vp_id, platform=platform)
