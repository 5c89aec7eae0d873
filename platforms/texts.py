"""A platform's page texts: the data file ``texts.toml`` next to its driver.

Meeting clients reword their screens every few weeks; what a driver recognises of them (lobby,
end and refusal texts, and the contract REASON each refusal maps to) is data, not code, so
adding or re-wording a platform touches its ``texts.toml`` only. The file holds::

    platform = "Zoom"                      # the name refusal details quote the platform by
    [patterns]                             # name -> regular expression (case-insensitive)
    invalid = '''meeting link is invalid|…'''
    [refusals]                             # pattern name -> what its match means
    invalid = { reason = "meeting-not-found", summary = "the meeting link is invalid" }

and :func:`load_texts` reads it once (at import of the platform's ``decisions``) into
compiled patterns and typed :class:`Refusal` rows that the pure decisions use directly.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platforms.base import Refused
from platforms.toolkit import platform_said, refusal_detail
from vp.lifecycle import Reason

TEXTS_FILE = "texts.toml"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refusal a page text means: the contract reason, our summary, what the organiser can
    change ("" where the facts tell nothing)."""

    reason: Reason
    summary: str
    organiser: str = ""


@dataclass(frozen=True)
class PlatformTexts:
    """One platform's compiled page texts (see the module docstring)."""

    platform: str
    patterns: Mapping[str, re.Pattern[str]]
    refusals: Mapping[str, Refusal]

    def __getitem__(self, name: str) -> re.Pattern[str]:
        return self.patterns[name]

    def refused(self, name: str, *texts: str | None) -> Refused | None:
        """The refusal ``name`` stands for when its pattern matches one of ``texts`` (the
        detail quotes the line the platform said); None when none matches."""
        pattern = self.patterns[name]
        if not any(pattern.search(text or "") for text in texts):
            return None
        return self.refusal(name, platform_said(pattern, *texts))

    def refusal(self, name: str, said: str = "") -> Refused:
        """The refusal ``name`` stands for, quoting ``said`` (the platform's own words)."""
        row = self.refusals[name]
        return Refused(row.reason, refusal_detail(row.summary, self.platform, said, row.organiser))


def load_texts(package_file: str) -> PlatformTexts:
    """The ``texts.toml`` next to ``package_file`` (a platform module's ``__file__``), compiled."""
    path = Path(package_file).with_name(TEXTS_FILE)
    raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    patterns = {
        name: re.compile(source.replace("\n", ""), re.I)
        for name, source in raw.get("patterns", {}).items()
    }
    refusals = {}
    for name, row in raw.get("refusals", {}).items():
        if name not in patterns:
            raise ValueError(f"{path}: refusal {name!r} has no pattern")
        refusals[name] = Refusal(Reason(row["reason"]), row["summary"], row.get("organiser", ""))
    return PlatformTexts(str(raw["platform"]), patterns, refusals)
