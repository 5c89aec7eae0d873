"""The behaviour every :class:`scheduler.store.VpStore` must have, as reusable tests.

Subclass :class:`StoreContract` in a ``Test…`` class and provide a ``store`` fixture (see
tests/scheduler/test_sqlite_store.py); the DynamoDB store runs the same tests under moto.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.errors import IdempotencyConflict, NotFound, StaleTransition
from scheduler.models import LaunchRequest, VpRecord, VpSecrets
from scheduler.store import VpStore
from vp.lifecycle import Reason, Status

SECRET_URL = "https://zoom.us/j/123456789?pwd=SeCrEtPwD42"


def make_record(
    vp_id: str, owner: str = "alice", *, created: datetime | None = None
) -> tuple[VpRecord, VpSecrets]:
    request = LaunchRequest(meeting_url=SECRET_URL, passcode="pass-9876", name="Bot")
    record = VpRecord.new(vp_id, owner, request, now=created)
    return record, VpSecrets(meeting_url=SECRET_URL, passcode="pass-9876")


class StoreContract:
    @pytest.fixture
    def store(self) -> VpStore:
        # Overridden by every concrete class (SQLite, DynamoDB variants): the contract is
        # written once and run against each store.
        raise TypeError("a StoreContract subclass must provide the store fixture")

    def test_create_get_keeps_secrets_apart(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        assert store.create(record, secrets) == record
        got = store.get("vp1")
        assert got == record
        assert got is not None and got.status is Status.SCHEDULED
        public = got.model_dump_json()
        assert "SeCrEtPwD42" not in public and "pass-9876" not in public
        assert got.meeting_url.startswith("https://zoom.us/j/123456789")
        assert store.get_secrets("vp1") == secrets
        assert store.get_passcode("vp1") == "pass-9876"
        assert store.get("nope") is None and store.get_secrets("nope") is None

    def test_duplicate_vp_id_is_refused(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        with pytest.raises(StaleTransition):
            store.create(record, secrets)

    def test_idempotency_key_names_one_vp_per_owner(self, store: VpStore) -> None:
        first, secrets = make_record("vp1")
        store.create(first, secrets, idempotency_key="k1", fingerprint="f1")
        second, _ = make_record("vp2")
        with pytest.raises(IdempotencyConflict) as caught:
            store.create(second, secrets, idempotency_key="k1", fingerprint="f2")
        assert caught.value.existing.vp_id == "vp1"
        assert caught.value.fingerprint == "f1"
        assert store.get("vp2") is None  # nothing written
        found = store.find_by_idempotency_key("alice", "k1")
        assert found is not None and found.vp_id == "vp1"
        assert store.find_by_idempotency_key("bob", "k1") is None
        other, _ = make_record("vp3", owner="bob")
        store.create(other, secrets, idempotency_key="k1")  # another owner's key space
        found = store.find_by_idempotency_key("bob", "k1")
        assert found is not None and found.vp_id == "vp3"

    def test_list_by_owner_newest_first_and_active(self, store: VpStore) -> None:
        base = datetime(2030, 1, 1, tzinfo=UTC)
        for i, owner in enumerate(["alice", "bob", "alice"]):
            record, secrets = make_record(f"vp{i}", owner, created=base + timedelta(minutes=i))
            store.create(record, secrets)
        assert [r.vp_id for r in store.list("alice")] == ["vp2", "vp0"]
        assert [r.vp_id for r in store.list()] == ["vp2", "vp1", "vp0"]
        assert store.list("carol") == []
        store.transition("vp1", Status.CANCELLED)
        assert sorted(r.vp_id for r in store.list_active()) == ["vp0", "vp2"]

    def test_transitions_follow_the_lifecycle(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        steps = [
            (Status.INITIALIZING, None),
            (Status.JOINING, None),
            (Status.JOINED, None),
            (Status.LEAVING, Reason.STOPPED),
            (Status.COMPLETED, Reason.STOPPED),
        ]
        for status, reason in steps:
            updated = store.transition("vp1", status, reason, f"to {status}")
            assert updated.status is status and updated.reason is reason
        final = store.get("vp1")
        assert final is not None
        assert [h.status for h in final.history] == [Status.SCHEDULED] + [s for s, _ in steps]
        assert final.detail == "to COMPLETED" and final.terminal and final.joined
        assert final.updated_at >= final.created_at
        with pytest.raises(StaleTransition):
            store.transition("vp1", Status.FAILED, Reason.INTERNAL_ERROR)

    def test_illegal_or_stale_transition_writes_nothing(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        with pytest.raises(StaleTransition):  # never JOINED
            store.transition("vp1", Status.COMPLETED, Reason.STOPPED)
        with pytest.raises(StaleTransition):  # expected status differs
            store.transition("vp1", Status.INITIALIZING, expected=Status.JOINING)
        with pytest.raises(StaleTransition):  # FAILED needs a failure reason
            store.transition("vp1", Status.FAILED, Reason.STOPPED)
        with pytest.raises(NotFound):
            store.transition("nope", Status.CANCELLED)
        got = store.get("vp1")
        assert got is not None and got.status is Status.SCHEDULED and len(got.history) == 1

    def test_cancelled_vp_can_never_launch(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        store.transition("vp1", Status.CANCELLED, expected=Status.SCHEDULED)
        with pytest.raises(StaleTransition):
            store.transition("vp1", Status.INITIALIZING, expected=Status.SCHEDULED)
        with pytest.raises(StaleTransition):
            store.transition("vp1", Status.INITIALIZING)

    def test_ts_is_kept_and_defaults_to_now(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        given = "2031-02-03T04:05:06.789Z"
        updated = store.transition("vp1", Status.INITIALIZING, ts=given)
        assert updated.history[-1].ts == given and updated.history[-1].vp_id == "vp1"
        updated = store.transition("vp1", Status.JOINING)
        stamped = datetime.fromisoformat(updated.history[-1].ts.replace("Z", "+00:00"))
        assert abs(stamped - datetime.now(UTC)) < timedelta(minutes=1)

    def test_racing_launches_have_one_winner(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        wins: list[int] = []
        losses: list[int] = []
        barrier = threading.Barrier(6)

        def launch(i: int) -> None:
            barrier.wait()
            try:
                store.transition("vp1", Status.INITIALIZING, expected=Status.SCHEDULED)
                wins.append(i)
            except StaleTransition:
                losses.append(i)
            except Exception as exc:
                errors.append(repr(exc))

        errors: list[str] = []
        threads = [threading.Thread(target=launch, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1 and len(losses) == 5, (wins, losses, errors)
        got = store.get("vp1")
        assert got is not None and [h.status for h in got.history].count(Status.INITIALIZING) == 1

    def test_launch_handle(self, store: VpStore) -> None:
        record, secrets = make_record("vp1")
        store.create(record, secrets)
        assert store.get_launch_handle("vp1") is None
        store.set_launch_handle("vp1", "arn:aws:states:us-east-1:1:execution:sm:vp1")
        assert store.get_launch_handle("vp1") == "arn:aws:states:us-east-1:1:execution:sm:vp1"
        with pytest.raises(NotFound):
            store.set_launch_handle("nope", "x")
