"""Per-owner launch limits on AWS, enforced by DynamoDB conditional writes (issue 13, 8).

Every Lambda container is its own process, so an in-memory limiter would let an owner launch
N times per container. Two kinds of items in the VP table (keys with a ``#``, which a VP id
cannot contain; no ``status`` attribute, so listings and the reaper skip them; not in the
owner index):

* ``rate#<owner hash>#<window number>`` — ``launches`` (N), ``ADD 1`` under the condition
  ``launches < limit``: at most ``limit`` launches per owner per fixed ``window`` (a burst
  across a window boundary can reach twice that; the stage's per-route throttling bounds the
  speed). ``expires_at`` (the table's TTL attribute) removes it after its window.
* ``active#<owner hash>`` — ``vps`` (string set of VP ids), ``ADD <vp_id>`` under the
  condition ``size(vps) < cap`` (or the id is in already): at most ``cap`` VPs per owner
  not yet ended. A VP leaves the set when it ends through the broker or a cancel
  (:meth:`release`, a set ``DELETE``: idempotent). Ends written elsewhere (the workflow's
  final FAILED, the reaper) are not seen here, so an owner at the cap has the set *healed*:
  every member whose record is terminal or gone is removed, then the write is tried once
  more. The set can therefore never lock an owner out; it can only be briefly generous.
  ``expires_at`` keeps an idle owner's item for a little over a year (the furthest
  ``join_at``).

Both conditions are evaluated by DynamoDB atomically, so concurrent launches from any number
of containers cannot exceed either limit.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from scheduler.errors import RateLimited
from scheduler.models import JOIN_AT_MAX_AHEAD
from scheduler.ratelimit import LaunchLimiter
from vp.errors import ConfigError
from vp.lifecycle import TERMINAL

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5)
DEFAULT_LAUNCHES = 20
DEFAULT_WINDOW_S = 3600
DEFAULT_MAX_ACTIVE = 10
# How soon an owner at the active cap may try again (a VP usually ends within minutes).
ACTIVE_RETRY_AFTER_S = 60.0


class ActiveLimitReached(RateLimited):
    """The owner has ``cap`` VPs that have not ended; 429 like any launch limit."""

    def __init__(self, cap: int) -> None:
        super().__init__(retry_after=ACTIVE_RETRY_AFTER_S)
        self.args = (f"too many active VPs (at most {cap} per owner); retry later",)
        self.cap = cap


def _is_conditional_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _owner_key(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:40]


class DynamoDbLaunchLimiter(LaunchLimiter):
    """``launches`` per owner per ``window`` seconds and at most ``max_active`` VPs per owner
    not yet ended, in the table ``table_name`` (see the module docstring)."""

    def __init__(
        self,
        table_name: str,
        *,
        launches: int = DEFAULT_LAUNCHES,
        window: int = DEFAULT_WINDOW_S,
        max_active: int = DEFAULT_MAX_ACTIVE,
        dynamodb: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ConfigError("the launch limiter needs a table name (VP_TABLE_NAME)")
        if launches < 1 or window < 1 or max_active < 1:
            raise ConfigError("launch limits must be positive")
        self.table_name = table_name
        self.launches = launches
        self.window = window
        self.max_active = max_active
        self._clock = clock
        self._ddb = dynamodb or boto3.client("dynamodb", config=_BOTO_CONFIG)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DynamoDbLaunchLimiter:
        """From ``VP_TABLE_NAME``, ``VP_OWNER_LAUNCHES`` (per ``VP_OWNER_LAUNCH_WINDOW``
        seconds) and ``VP_OWNER_MAX_ACTIVE``."""
        env = os.environ if env is None else env
        try:
            return cls(
                env.get("VP_TABLE_NAME", ""),
                launches=int(env.get("VP_OWNER_LAUNCHES") or DEFAULT_LAUNCHES),
                window=int(env.get("VP_OWNER_LAUNCH_WINDOW") or DEFAULT_WINDOW_S),
                max_active=int(env.get("VP_OWNER_MAX_ACTIVE") or DEFAULT_MAX_ACTIVE),
            )
        except ValueError:
            raise ConfigError("VP_OWNER_LAUNCHES, _LAUNCH_WINDOW, _MAX_ACTIVE: integers") from None

    # -- the launch rate -------------------------------------------------------------------
    def _count_launch(self, owner: str) -> None:
        now = self._clock()
        number = int(now // self.window)
        window_end = (number + 1) * self.window
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"vp_id": {"S": f"rate#{_owner_key(owner)}#{number}"}},
                UpdateExpression="ADD launches :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(launches) OR launches < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(self.launches)},
                    ":expires": {"N": str(window_end + 60)},
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                raise RateLimited(retry_after=max(1.0, math.ceil(window_end - now))) from None
            raise

    # -- active VPs ------------------------------------------------------------------------
    def _active_key(self, owner: str) -> dict[str, Any]:
        return {"vp_id": {"S": f"active#{_owner_key(owner)}"}}

    def _claim(self, owner: str, vp_id: str) -> bool:
        expires = int(self._clock() + JOIN_AT_MAX_AHEAD.total_seconds() + 7 * 86400)
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._active_key(owner),
                UpdateExpression="ADD vps :id SET expires_at = :expires",
                ConditionExpression=(
                    "attribute_not_exists(vps) OR size(vps) < :cap OR contains(vps, :vp)"
                ),
                ExpressionAttributeValues={
                    ":id": {"SS": [vp_id]},
                    ":vp": {"S": vp_id},
                    ":cap": {"N": str(self.max_active)},
                    ":expires": {"N": str(expires)},
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def active(self, owner: str) -> set[str]:
        """The owner's VP ids counted as active."""
        item = self._ddb.get_item(
            TableName=self.table_name, Key=self._active_key(owner), ConsistentRead=True
        ).get("Item")
        return set(item["vps"]["SS"]) if item and "vps" in item else set()

    def _heal(self, owner: str) -> int:
        """Drop members whose record ended or is gone; how many were dropped."""
        ended = []
        for vp_id in self.active(owner):
            item = self._ddb.get_item(
                TableName=self.table_name,
                Key={"vp_id": {"S": vp_id}},
                ProjectionExpression="#status",
                ExpressionAttributeNames={"#status": "status"},
                ConsistentRead=True,
            ).get("Item")
            if item is None or item.get("status", {}).get("S") in {s.value for s in TERMINAL}:
                ended.append(vp_id)
        for vp_id in ended:
            self.release(owner, vp_id)
        return len(ended)

    def acquire(self, owner: str, vp_id: str) -> None:
        """Claim an active slot for ``vp_id`` and count one launch; :class:`RateLimited` /
        :class:`ActiveLimitReached` (claiming nothing) when over either limit."""
        if not self._claim(owner, vp_id) and not (self._heal(owner) and self._claim(owner, vp_id)):
            raise ActiveLimitReached(self.max_active)
        try:
            self._count_launch(owner)
        except BaseException:
            self.release(owner, vp_id)
            raise

    def release(self, owner: str, vp_id: str) -> None:
        self._ddb.update_item(
            TableName=self.table_name,
            Key=self._active_key(owner),
            UpdateExpression="DELETE vps :id",
            ExpressionAttributeValues={":id": {"SS": [vp_id]}},
        )
