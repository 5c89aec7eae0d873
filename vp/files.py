"""Append-only JSON-lines files (transcript.jsonl, chat.jsonl), flushed line by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class JsonlWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        if self._file.closed:
            return
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()
