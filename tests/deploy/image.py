"""The task image, built for real with Debian's podman, and run the way ECS runs it.

podman's own runtime cannot start containers on these machines (crun fails on cgroups and
rlimits), so a container is made from the image's mounted root by hand, with what the task
definition asks for: a private mount and PID namespace, the root filesystem read-only, a tmpfs
at the image's VOLUME (Fargate's scratch volume), the image's USER, environment and working
directory, and an init process as PID 1 that forwards SIGTERM (``InitProcessEnabled``). The
network namespace is the host's (``--network host``), so loopback servers of the test are
reachable. No cgroup limits apply, and the base image is a stand-in (scripts/build-image.sh).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "build-image.sh"
TAG = "localhost/vp:suite"


@dataclass(frozen=True)
class Image:
    """A built image: its tag, its root filesystem (``podman image mount``) and its config."""

    tag: str
    root: Path
    env: dict[str, str]
    user: str
    workdir: str
    volumes: tuple[str, ...]
    entrypoint: tuple[str, ...]
    healthcheck: tuple[str, ...]
    size_bytes: int

    @property
    def uid_gid(self) -> tuple[int, int]:
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)


def build_image(tag: str = TAG) -> Image:
    """Build the Dockerfile on the stand-in base (cached) and describe the result."""
    env = {**os.environ, "VP_IMAGE_BASE": "stand-in"}
    result = subprocess.run(
        ["bash", str(BUILD), tag], env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise AssertionError(f"image build failed:\n{result.stderr[-6000:]}")
    (info,) = json.loads(
        subprocess.run(
            ["podman", "image", "inspect", tag], capture_output=True, text=True, check=True
        ).stdout
    )
    config = info["Config"]
    root = subprocess.run(
        ["podman", "image", "mount", tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    health = (info.get("Healthcheck") or {}).get("Test", [])
    return Image(
        tag=tag,
        root=Path(root),
        env=dict(item.split("=", 1) for item in config.get("Env", [])),
        user=config.get("User", "0"),
        workdir=config.get("WorkingDir", "/"),
        volumes=tuple(sorted(config.get("Volumes") or {})),
        entrypoint=tuple(config.get("Entrypoint") or ()),
        healthcheck=tuple(health[1:] if health[:1] == ["CMD"] else health),
        size_bytes=int(info["Size"]),
    )


# The init process (PID 1 of the namespace): makes the container's root, starts the command
# as the image's user, forwards SIGTERM/SIGINT to it as ECS's init does, and after it exits
# copies the volume out to the host (the tmpfs dies with the namespace).
_INIT = r"""
set -eu
mount --make-rprivate /
new=$(mktemp -d)
mount --bind "$IMAGE_ROOT" "$new"
mount -t proc proc "$new/proc"
mount --rbind /dev "$new/dev"
mount --rbind /sys "$new/sys"
mount -t tmpfs -o size=1g tmpfs "$new$VOLUME"
# ECS fills a fresh volume with the image's content at its path, owner and mode included.
cp -a "$IMAGE_ROOT$VOLUME/." "$new$VOLUME/"
chown --reference="$IMAGE_ROOT$VOLUME" "$new$VOLUME"
chmod --reference="$IMAGE_ROOT$VOLUME" "$new$VOLUME"
mount -o remount,bind,ro "$new"
echo "$new" > "$ROOT_NOTE"
set +e
chroot --userspec="$VP_UID:$VP_GID" "$new" /usr/bin/env -i $CONTAINER_ENV \
  /bin/sh -c 'cd "$0" && exec "$@"' "$WORKDIR" "$@" &
child=$!
trap 'kill -TERM $child' TERM INT
wait $child; rc=$?
while kill -0 $child 2>/dev/null; do wait $child; rc=$?; done
cp -a "$new$VOLUME/." "$COPY_OUT/"
exit $rc
"""


@dataclass
class Container:
    """One command running in the image, as ECS would run it (see the module docstring)."""

    image: Image
    command: Sequence[str]
    env: Mapping[str, str]
    copy_out: Path
    proc: asyncio.subprocess.Process | None = None
    new_root: str | None = None

    async def start(self) -> Container:
        (volume,) = self.image.volumes
        self.copy_out.mkdir(parents=True, exist_ok=True)
        note = self.copy_out.parent / f".{self.copy_out.name}-root"
        uid, gid = self.image.uid_gid
        env = {**self.image.env, **self.env}
        init_env = {
            "IMAGE_ROOT": str(self.image.root),
            "VOLUME": volume,
            "VP_UID": str(uid),
            "VP_GID": str(gid),
            "ROOT_NOTE": str(note),
            "WORKDIR": self.image.workdir,
            "COPY_OUT": str(self.copy_out),
            "CONTAINER_ENV": " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()),
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        }
        script = _INIT.replace("$CONTAINER_ENV", init_env.pop("CONTAINER_ENV"))
        self.proc = await asyncio.create_subprocess_exec(
            "unshare", "--mount", "--pid", "--fork", "--kill-child",
            "sh", "-c", script, "init", *self.command,
            env=init_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._note = note
        return self

    def _init_pid(self) -> int:
        """Host PID of the namespace's PID 1 (the forked child of ``unshare``)."""
        assert self.proc is not None
        return _first_child(self.proc.pid)

    def _command_pid(self) -> int:
        """Host PID of the command (the init's child, inside the container's root)."""
        return _first_child(self._init_pid())

    async def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the running container (its namespaces, root, user and env)."""
        uid, gid = self.image.uid_gid
        env = [f"{k}={v}" for k, v in {**self.image.env, **self.env}.items()]
        proc = await asyncio.create_subprocess_exec(
            "nsenter", "--target", str(self._command_pid()), "--mount", "--pid", "--root",
            "--setuid", str(uid), "--setgid", str(gid),
            "/usr/bin/env", "-i", *env, *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return subprocess.CompletedProcess(
            list(argv), proc.returncode or 0, out.decode(), err.decode()
        )

    async def wait_started(self, timeout: float = 30) -> None:
        """Until the init process has made the root and started the command."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._note.exists():
            assert self.proc is not None
            if self.proc.returncode is not None or loop.time() > deadline:
                raise AssertionError("the container did not start")
            await asyncio.sleep(0.05)

    def terminate(self) -> None:
        """SIGTERM to PID 1, as ECS's StopTask does; the init forwards it to the command."""
        os.kill(self._init_pid(), 15)

    async def wait(self, timeout: float) -> tuple[int, str, str]:
        assert self.proc is not None
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        return self.proc.returncode or 0, out.decode(), err.decode()


def _first_child(pid: int) -> int:
    return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


@contextlib.asynccontextmanager
async def running(
    image: Image, command: Sequence[str], env: Mapping[str, str], copy_out: Path
) -> AsyncIterator[Container]:
    container = await Container(image, command, env, copy_out).start()
    try:
        await container.wait_started()
        yield container
    finally:
        if container.proc is not None and container.proc.returncode is None:
            container.proc.kill()
            await container.proc.wait()
