"""Speech engines of the local reference transcriber, registered by name.

``ENGINES`` is the one explicit registry: name → factory. Factories import their module
lazily, so a missing optional dependency (``amazon-transcribe``) only matters to whoever asks
for that engine, and the error names the extra to install.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from vp.errors import ConfigError
from vp.transcriber.engine_packages import ENGINE_PACKAGES, engine_unavailable
from vp.transcriber.engines.base import (
    Engine,
    EngineError,
    EngineResult,
    EngineStream,
)

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINE_PACKAGES",
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineFactory",
    "EngineResult",
    "EngineStream",
    "create_engine",
    "engine_unavailable",
]

EngineFactory = Callable[..., Engine]
DEFAULT_ENGINE = "pocketsphinx"


def _pocketsphinx(**options: Any) -> Engine:
    from vp.transcriber.engines.pocketsphinx_engine import PocketsphinxEngine

    return PocketsphinxEngine(**options)


def _aws_transcribe(**options: Any) -> Engine:
    from vp.transcriber.engines.aws_transcribe import AwsTranscribeEngine

    # Amazon Transcribe's own language model hears wake phrases; nothing to spot.
    options.pop("wake_phrases", None)
    return AwsTranscribeEngine(**options)


ENGINES: Mapping[str, EngineFactory] = MappingProxyType(
    {
        "pocketsphinx": _pocketsphinx,
        "aws-transcribe": _aws_transcribe,
    }
)


def create_engine(name: str, **options: Any) -> Engine:
    """Build the engine registered as ``name``; ConfigError for an unknown name."""
    try:
        factory = ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise ConfigError(f"unknown transcriber engine {name!r} (known: {known})") from None
    return factory(**options)
