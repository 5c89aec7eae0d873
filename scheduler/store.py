"""The one store interface of the control plane (SQLite locally, DynamoDB on AWS).

The interface is **synchronous**: boto3 is synchronous, and SQLite calls are short. Async
callers (the HTTP API, the local scheduler) call it through ``asyncio.to_thread``; every
implementation must therefore be thread-safe.

Contract every implementation keeps (tests/scheduler/store_contract.py checks it):

* Records are :class:`~scheduler.models.VpRecord` — public, secret-free. Secrets
  (:class:`~scheduler.models.VpSecrets`: the URL as given, the passcode) are kept apart and
  returned only by :meth:`VpStore.get_secrets`, never by ``get``/``list``.
* Every status change goes through :meth:`VpStore.transition`, which validates with
  :func:`vp.lifecycle.check_transition` against the *stored* status and writes conditionally
  (SQLite: one ``BEGIN IMMEDIATE`` transaction; DynamoDB: ``ConditionExpression`` on the status
  read). So two writers racing cannot both win, and a CANCELLED VP can never be launched.
* Timestamps are aware UTC datetimes; ``history`` is append-only and in order.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod

from scheduler.errors import IdempotencyConflict, NotFound, StaleTransition
from scheduler.models import VpRecord, VpSecrets
from vp.lifecycle import Reason, Status

__all__ = ["IdempotencyConflict", "NotFound", "StaleTransition", "VpStore"]


class VpStore(ABC):
    """Persistent VP records + secrets + launch handles + idempotency keys. Thread-safe."""

    @abstractmethod
    def create(
        self,
        record: VpRecord,
        secrets: VpSecrets,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> VpRecord:
        """Store a new record (normally SCHEDULED, history = [its first status]) with its
        secrets, atomically, and return it.

        With ``idempotency_key``: the pair ``(record.owner, idempotency_key)`` is claimed in
        the same atomic write. If that pair already names a VP, nothing is written and
        :class:`IdempotencyConflict` is raised carrying the existing record and the
        ``fingerprint`` stored with the key (the service compares it with the new request's).
        A ``vp_id`` that already exists raises :class:`StaleTransition`.
        """

    @abstractmethod
    def get(self, vp_id: str) -> VpRecord | None:
        """The record, or None. No ownership check here: the service does that."""

    @abstractmethod
    def list(self, owner: str | None = None) -> list[VpRecord]:
        """Records of ``owner`` (every owner's when None), newest ``created_at`` first."""

    @abstractmethod
    def list_active(self) -> builtins.list[VpRecord]:
        """Every record whose status is not terminal (for re-arming and the reaper)."""

    @abstractmethod
    def transition(
        self,
        vp_id: str,
        status: Status,
        reason: Reason | None = None,
        detail: str | None = None,
        *,
        expected: Status | None = None,
        ts: str | None = None,
    ) -> VpRecord:
        """Append the status object ``{ts, vp_id, status, reason, detail}`` to the history,
        set ``status``/``reason``/``detail``/``updated_at``, and return the new record.

        Conditional and atomic: raises :class:`NotFound` for an unknown VP and
        :class:`StaleTransition` (writing nothing) when ``expected`` is given and differs
        from the stored status, or when ``check_transition(stored, status, reason,
        joined=<JOINED in history>)`` refuses. ``ts`` defaults to now (ISO-8601 UTC ``Z``).
        """

    @abstractmethod
    def get_secrets(self, vp_id: str) -> VpSecrets | None:
        """The VP's secrets (for the launcher / ``vp run`` only), or None."""

    def get_passcode(self, vp_id: str) -> str | None:
        """The VP's passcode, or None."""
        secrets = self.get_secrets(vp_id)
        return secrets.passcode if secrets else None

    @abstractmethod
    def set_launch_handle(self, vp_id: str, handle: str) -> None:
        """Remember how the VP was launched (Step Functions execution ARN, local pid, …).
        Raises :class:`NotFound` for an unknown VP."""

    @abstractmethod
    def get_launch_handle(self, vp_id: str) -> str | None:
        """The handle set by :meth:`set_launch_handle`, or None."""

    @abstractmethod
    def find_by_idempotency_key(self, owner: str, key: str) -> VpRecord | None:
        """The VP that ``(owner, key)`` names, or None."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
