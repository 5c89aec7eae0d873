"""The SQLite store: the shared store contract, plus durability across reopen."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.sqlite_store import SqliteStore
from scheduler.store import VpStore
from tests.scheduler.store_contract import StoreContract, make_record
from vp.lifecycle import Status


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[VpStore]:
        store = SqliteStore(tmp_path / "vps.db")
        yield store
        store.close()


def test_survives_reopen_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "vps.db"
    store = SqliteStore(path)
    record, secrets = make_record("vp1")
    store.create(record, secrets, idempotency_key="k")
    store.transition("vp1", Status.INITIALIZING)
    store.set_launch_handle("vp1", "pid:123")
    store.close()

    reopened = SqliteStore(path)
    got = reopened.get("vp1")
    assert got is not None and got.status is Status.INITIALIZING and len(got.history) == 2
    assert reopened.get_secrets("vp1") == secrets
    assert reopened.get_launch_handle("vp1") == "pid:123"
    assert reopened.find_by_idempotency_key("alice", "k") is not None
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert path.stat().st_mode & 0o077 == 0, "the database (with passcodes) is owner-only"


def test_public_table_holds_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "vps.db"
    store = SqliteStore(path)
    record, secrets = make_record("vp1")
    store.create(record, secrets)
    store.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM vps").fetchall()
    text = repr(rows)
    assert "vp1" in text
    assert "SeCrEtPwD42" not in text and "pass-9876" not in text
