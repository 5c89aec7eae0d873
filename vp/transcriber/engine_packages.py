"""Which package each transcriber engine needs, without importing any engine: the VP's
configuration checks it before a browser starts (the task image leaves the offline engine out),
and the control plane's Lambdas import that configuration."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from types import MappingProxyType

# The package each engine imports, and the extra of vp that installs it.
ENGINE_PACKAGES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "pocketsphinx": ("pocketsphinx", "local"),
        "aws-transcribe": ("amazon_transcribe", "transcribe"),
    }
)


def engine_unavailable(name: str) -> str | None:
    """Why the engine ``name`` cannot run here (its package is not installed), or None."""
    package, extra = ENGINE_PACKAGES.get(name, (None, ""))
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    return f"the {name} engine needs {package}: install vp[{extra}]"
