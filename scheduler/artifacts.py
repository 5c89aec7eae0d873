"""A VP's artifacts: where they are kept, how they get there, how their owner reads them.

The artifacts are the files a VP writes to its output folder (contract 1) plus
``speakers.jsonl`` (the SPEAKER_CHANGE history): :data:`ARTIFACTS`.

* Locally (``vp serve``) they *are* the output folder's files (:class:`LocalArtifacts`); the
  API streams them.
* On AWS (:class:`S3Artifacts`) the task uploads them to the artifact bucket under
  ``vps/<vp_id>/`` **while the call runs** (:class:`ArtifactUploader`) and the API hands out
  short-lived presigned GET URLs.

Upload layout — rolling chunks plus a final object:

``vps/<vp_id>/chunks/<name>/<offset, 12 digits>``
    Every :data:`UPLOAD_INTERVAL_S` (60 s) the uploader PUTs, for each file that grew, the
    bytes written since its last upload (for the JSON-lines files, up to the last complete
    line) as one object named by its byte offset. A crash or Spot interruption loses at most
    the last interval. Offsets as names make a retried PUT idempotent and assembly a sorted
    listing.
``vps/<vp_id>/<name>``
    At the end the task PUTs each whole file (boto3's managed transfer: multipart for a long
    recording). This is what the API lists and presigns.

Why not one multipart upload per file: the parts of an unfinished multipart upload cannot be
read, every part but the last must be ≥ 5 MiB (82 s of recording, more than the minute we
may lose; the text files never get there), and completing it after a crash needs someone
holding its upload id. Chunks are readable objects the moment they land, whatever size.

A killed task leaves chunks but no final object: :meth:`S3Artifacts.find` for a VP that has
ended *salvages* them — concatenates the chunks into the final object with a streaming
multipart upload (bounded memory) and, for ``recording.wav``, rewrites the RIFF/data sizes
in the header, which the chunk at offset 0 holds as they were then (libsndfile rewrites the
header on every write). The task's own final PUT, should it still come, overwrites the same
key with the same bytes.

Per-VP least privilege (see :mod:`scheduler.broker`): the task role has no S3 access. The
broker, for a valid launch ticket, assumes the stack's artifact-writer role with the session
tag ``vp_id`` and a session policy naming only ``vps/<vp_id>/*``; that role's own policy
allows ``s3:PutObject`` only on ``vps/${aws:PrincipalTag/vp_id}/*``. The task gets those
temporary credentials (one hour; refreshed through the broker) and nothing else.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

CONTENT_TYPES = {
    "recording.wav": "audio/wav",
    "transcript.jsonl": "application/x-ndjson",
    "chat.jsonl": "application/x-ndjson",
    "speakers.jsonl": "application/x-ndjson",
    "status.jsonl": "application/x-ndjson",
    "summary.json": "application/json",
}
ARTIFACTS = tuple(CONTENT_TYPES)
# Written while the call runs, so uploaded in chunks; summary.json is written at the end.
STREAMED = ("recording.wav", "transcript.jsonl", "chat.jsonl", "speakers.jsonl", "status.jsonl")
LINE_FILES = frozenset(n for n in STREAMED if n.endswith(".jsonl"))
UPLOAD_INTERVAL_S = 60.0
PRESIGN_TTL_S = 300
PART_SIZE = 8 * 1024 * 1024  # salvage multipart parts (S3's minimum is 5 MiB)
# Salvage runs inside an API request (29 s on AWS): larger leftovers (about 4 h of recording)
# stay chunks, listed as incomplete; see the README for joining them by hand.
SALVAGE_MAX_BYTES = 1024 * 1024 * 1024
_CHUNK_KEY = re.compile(r"^vps/[^/]+/chunks/([^/]+)/(\d{12})$")


def prefix(vp_id: str) -> str:
    return f"vps/{vp_id}/"


def final_key(vp_id: str, name: str) -> str:
    return f"{prefix(vp_id)}{name}"


def chunk_key(vp_id: str, name: str, offset: int) -> str:
    return f"{prefix(vp_id)}chunks/{name}/{offset:012d}"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact of a VP as the API lists it (``url`` is filled in by the API locally)."""

    name: str
    size: int
    content_type: str
    complete: bool
    url: str | None = None
    updated_at: str | None = None


class ArtifactSource(ABC):
    """Where the API finds a VP's artifacts. Synchronous (boto3); call from a thread."""

    @abstractmethod
    def find(self, vp_id: str, *, ended: bool) -> list[Artifact]:
        """The artifacts of ``vp_id`` that exist, in :data:`ARTIFACTS` order. ``ended``: the
        VP is over (an AWS source may then salvage what a killed task left)."""


class LocalArtifacts(ArtifactSource):
    """``vp serve``: the files in ``out_root/<vp_id>/``."""

    def __init__(self, out_root: Path) -> None:
        self.out_root = out_root

    def path(self, vp_id: str, name: str) -> Path | None:
        """The file of artifact ``name``, or None (unknown name, no such file)."""
        if name not in CONTENT_TYPES:
            return None
        path = self.out_root / vp_id / name
        return path if path.is_file() else None

    def find(self, vp_id: str, *, ended: bool) -> list[Artifact]:
        found: list[Artifact] = []
        for name in ARTIFACTS:
            path = self.path(vp_id, name)
            if path is None:
                continue
            stat = path.stat()
            found.append(
                Artifact(
                    name=name,
                    size=stat.st_size,
                    content_type=CONTENT_TYPES[name],
                    complete=ended,
                    updated_at=_iso(stat.st_mtime),
                )
            )
        return found


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------ WAV header


def patch_wav_header(head: bytes, total_size: int) -> bytes:
    """``head`` (the first bytes of a RIFF/WAVE file, holding its ``data`` chunk header) with
    the RIFF size and the data size rewritten for a file of ``total_size`` bytes. A header
    that does not parse is returned unchanged."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return head
    out = bytearray(head)
    struct.pack_into("<I", out, 4, min(total_size - 8, 0xFFFFFFFF))
    position = 12
    while position + 8 <= len(out):
        chunk_id = bytes(out[position : position + 4])
        (size,) = struct.unpack_from("<I", out, position + 4)
        if chunk_id == b"data":
            data_size = total_size - (position + 8)
            struct.pack_into("<I", out, position + 4, max(0, min(data_size, 0xFFFFFFFF)))
            return bytes(out)
        position += 8 + size + (size & 1)
    return head


# ----------------------------------------------------------------------------------- S3


class S3Artifacts(ArtifactSource):
    """The artifact bucket (AWS): final objects presigned; a killed task's chunks salvaged."""

    def __init__(
        self,
        bucket: str,
        *,
        s3: Any = None,
        presign_ttl: int = PRESIGN_TTL_S,
        salvage_max: int = SALVAGE_MAX_BYTES,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.presign_ttl = presign_ttl
        self.salvage_max = salvage_max
        self._s3 = s3 or boto3.client(
            "s3",
            config=Config(
                signature_version="s3v4", retries={"mode": "standard", "max_attempts": 5}
            ),
        )

    @classmethod
    def from_env(cls, env: Any = None) -> S3Artifacts | None:
        env = os.environ if env is None else env
        bucket = env.get("VP_ARTIFACT_BUCKET", "")
        return cls(bucket) if bucket else None

    def _objects(self, vp_id: str) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix(vp_id)):
            objects.extend(page.get("Contents", []))
        return objects

    def find(self, vp_id: str, *, ended: bool) -> list[Artifact]:
        finals: dict[str, dict[str, Any]] = {}
        chunks: dict[str, list[dict[str, Any]]] = {}
        for listed in self._objects(vp_id):
            key = listed["Key"]
            match = _CHUNK_KEY.match(key)
            if match and match.group(1) in CONTENT_TYPES:
                chunks.setdefault(match.group(1), []).append(listed)
            elif key[len(prefix(vp_id)) :] in CONTENT_TYPES:
                finals[key[len(prefix(vp_id)) :]] = listed
        found: list[Artifact] = []
        for name in ARTIFACTS:
            obj: dict[str, Any] | None = finals.get(name)
            leftover = sum(int(c["Size"]) for c in chunks.get(name, []))
            if obj is None and name in chunks and ended and leftover <= self.salvage_max:
                obj = self.salvage(vp_id, name, chunks[name])
            if obj is not None:
                found.append(
                    Artifact(
                        name=name,
                        size=int(obj["Size"]),
                        content_type=CONTENT_TYPES[name],
                        complete=True,
                        url=self.presign(vp_id, name),
                        updated_at=_iso(obj["LastModified"].timestamp()),
                    )
                )
            elif name in chunks:  # running (or too large to salvage): uploaded so far, no URL
                parts = chunks[name]
                found.append(
                    Artifact(
                        name=name,
                        size=sum(int(p["Size"]) for p in parts),
                        content_type=CONTENT_TYPES[name],
                        complete=False,
                        updated_at=_iso(max(p["LastModified"] for p in parts).timestamp()),
                    )
                )
        return found

    def presign(self, vp_id: str, name: str) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": final_key(vp_id, name),
                "ResponseContentType": CONTENT_TYPES[name],
                "ResponseContentDisposition": f'attachment; filename="{vp_id}-{name}"',
            },
            ExpiresIn=self.presign_ttl,
        )
        return url

    def salvage(self, vp_id: str, name: str, chunks: list[dict[str, Any]]) -> dict[str, Any]:
        """Assemble the final object of ``name`` from a killed task's chunks (streaming,
        :data:`PART_SIZE` parts); the WAV header is patched to the assembled length. Chunks
        that do not follow on from the previous one (a gap) end the assembly there."""
        ordered = sorted(chunks, key=lambda o: o["Key"])
        contiguous: list[dict[str, Any]] = []
        expected = 0
        for obj in ordered:
            offset = int(obj["Key"].rsplit("/", 1)[1])
            if offset != expected:
                break
            contiguous.append(obj)
            expected += int(obj["Size"])
        total = expected
        key = final_key(vp_id, name)
        upload = self._s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=CONTENT_TYPES[name]
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        first = True
        try:
            for obj in contiguous:
                body = self._s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()
                if first and name == "recording.wav":
                    body = patch_wav_header(body, total)
                first = False
                buffer += body
                while len(buffer) >= PART_SIZE:
                    parts.append(
                        self._part(key, upload_id, len(parts) + 1, bytes(buffer[:PART_SIZE]))
                    )
                    del buffer[:PART_SIZE]
            if buffer or not parts:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except Exception:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        log.info("vp.artifact_salvaged", vp_id=vp_id, artifact=name, size=total)
        head = self._s3.head_object(Bucket=self.bucket, Key=key)
        return {"Key": key, "Size": head["ContentLength"], "LastModified": head["LastModified"]}

    def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        response = self._s3.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}


# ------------------------------------------------------------------------- the uploader


class ArtifactUploader:
    """The task side: uploads the output folder's artifacts to ``vps/<vp_id>/`` while the
    call runs (rolling chunks every ``interval`` seconds) and whole at the end.

    It only watches the folder — the runner needs no hook — so it can run beside any VP.
    ``s3`` returns the S3 client to use for each round (on AWS one built from the broker's
    scoped, refreshed credentials). Upload errors are logged and retried next round; they
    never end the VP."""

    def __init__(
        self,
        out_dir: Path,
        vp_id: str,
        bucket: str,
        s3: Callable[[], Any],
        *,
        interval: float = UPLOAD_INTERVAL_S,
    ) -> None:
        self.out_dir = out_dir
        self.vp_id = vp_id
        self.bucket = bucket
        self.interval = interval
        self._s3 = s3
        self.offsets: dict[str, int] = dict.fromkeys(STREAMED, 0)
        # Held for a whole round: a round still running in its thread when run() is cancelled
        # finishes before finish()'s round starts (rounds never interleave).
        self.round_lock = threading.Lock()
        self.chunks_uploaded = 0
        self.finals_uploaded: list[str] = []

    def upload_new(self) -> int:
        """One round: PUT what each file gained since its last upload. Returns the number
        of chunks uploaded."""
        with self.round_lock:
            return self._upload_round()

    def _upload_round(self) -> int:
        client = self._s3()
        uploaded = 0
        for name in STREAMED:
            path = self.out_dir / name
            offset = self.offsets[name]
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size <= offset:
                continue
            with open(path, "rb") as file:
                file.seek(offset)
                data = file.read(size - offset)
            if name in LINE_FILES:
                end = data.rfind(b"\n")
                if end < 0:
                    continue  # a line in the making: next round
                data = data[: end + 1]
            client.put_object(
                Bucket=self.bucket,
                Key=chunk_key(self.vp_id, name, offset),
                Body=data,
                ContentType="application/octet-stream",
            )
            self.offsets[name] = offset + len(data)
            uploaded += 1
        self.chunks_uploaded += uploaded
        return uploaded

    def upload_final(self) -> None:
        """The end of the call: every artifact file, whole, as its final object."""
        client = self._s3()
        for name in ARTIFACTS:
            path = self.out_dir / name
            if not path.is_file():
                continue
            client.upload_file(
                str(path),
                self.bucket,
                final_key(self.vp_id, name),
                ExtraArgs={"ContentType": CONTENT_TYPES[name]},
            )
            self.finals_uploaded.append(name)

    async def run(self) -> None:
        """Upload a round every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.upload_new)
            except Exception as exc:
                log.warning("vp.artifact_upload_failed", error=type(exc).__name__)

    async def finish(self) -> None:
        """The last round, then the final objects (errors logged)."""
        try:
            await asyncio.to_thread(self.upload_new)
            await asyncio.to_thread(self.upload_final)
            log.info("vp.artifacts_uploaded", artifacts=len(self.finals_uploaded))
        except Exception as exc:
            log.error("vp.artifact_final_upload_failed", error=type(exc).__name__)


def session_policy(bucket_arn: str, vp_id: str) -> dict[str, Any]:
    """The session policy the broker attaches to a task's artifact credentials: writes to
    ``vps/<vp_id>/*`` only (intersected with the writer role's own, tag-scoped policy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnPrefixOnly",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
                "Resource": f"{bucket_arn}/{prefix(vp_id)}*",
            },
            {
                "Sid": "BucketKeyViaS3",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": "*",
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            },
        ],
    }


class BrokeredS3:
    """The task's S3 client for its artifacts: built from the broker's scoped credentials
    (:meth:`scheduler.broker.BrokerClient.artifact_credentials`), rebuilt with fresh ones
    when they have less than :attr:`refresh_margin_s` left. Callable: what
    :class:`ArtifactUploader` takes."""

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any]],
        *,
        refresh_margin_s: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fetch = fetch
        self.refresh_margin_s = refresh_margin_s
        self._clock = clock
        self._client: Any = None
        self._expires: datetime | None = None
        self.bucket: str | None = None
        self.refreshes = 0

    def _stale(self) -> bool:
        if self._client is None or self._expires is None:
            return True
        return (self._expires - self._clock()).total_seconds() < self.refresh_margin_s

    def __call__(self) -> Any:
        if self._stale():
            import boto3
            from botocore.config import Config

            grant = self._fetch()
            creds = grant["credentials"]
            self.bucket = str(grant["bucket"])
            self._expires = datetime.fromisoformat(str(creds["expiration"]).replace("Z", "+00:00"))
            self._client = boto3.client(
                "s3",
                aws_access_key_id=creds["access_key_id"],
                aws_secret_access_key=creds["secret_access_key"],
                aws_session_token=creds["session_token"],
                config=Config(retries={"mode": "standard", "max_attempts": 5}),
            )
            self.refreshes += 1
        return self._client
