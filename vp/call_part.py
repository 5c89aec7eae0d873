"""The one shape of the parts a VP's runner starts for a call (vp/runner.py is wiring only).

A part owns the tasks it starts (:meth:`CallPart.aclose` cancels and awaits them), and may add
a note to the terminal status detail and its entries to summary.json. The runner closes every
part after END went to the transcriber, then writes their notes and summaries in its order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class CallPart(ABC):
    @abstractmethod
    async def aclose(self) -> None:
        """Cancel and await the part's tasks (and release what it holds)."""

    def note(self) -> str | None:
        """For the terminal status detail (e.g. a warning), or None."""
        return None

    def summarize(self, stats: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Add the part's entries to summary.json's ``stats``."""
