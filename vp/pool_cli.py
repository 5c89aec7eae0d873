"""``vp pool``: several meetings in one process and one Chromium (see vp/pool.py).

    vp pool URL [URL ...] [--platform P] [--name N] [--transcriber-url WS] [--out DIR]
            [--max-duration S] [--join-timeout S] [--json]
    vp pool --config meetings.json [--out DIR] [--json]

Each meeting gets its own VP id, ``DIR/<vp_id>/`` output (status.jsonl, transcript.jsonl,
chat.jsonl, recording.wav) and transcriber connection (call id ``vp-<vp_id>`` unless given).
Options given on the command line apply to every meeting of a ``--config`` file that does not
set them itself. Exit code: 0 when every VP ended COMPLETED/CANCELLED, 2 when any ended FAILED,
1 for usage errors (nothing is started then).

Kept apart from vp/cli.py so the CLI's other commands do not import the runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vp.errors import describe_validation_error
from vp.settings import VpSettings

EXIT_USAGE = 1

# option dest → JoinConfig field, for options shared by every meeting of the pool
_SHARED = (
    "platform",
    "name",
    "transcriber_url",
    "transcriber_token",
    "max_duration",
    "join_timeout",
    "alone_timeout",
    "engine",
)


def add_parser(sub: Any, settings: VpSettings) -> None:
    """``vp pool``'s options; the transcriber's URL and token default to ``settings``'."""
    pool = sub.add_parser("pool", help="run several meetings in one process and one Chromium")
    pool.add_argument("urls", nargs="*", metavar="URL")
    pool.add_argument("--config", type=Path, help="JSON file: {defaults?, meetings: [...]}")
    pool.add_argument("--platform")
    pool.add_argument("--name")
    token = settings.transcriber_token
    pool.add_argument("--transcriber-url", default=settings.transcriber_url)
    pool.add_argument(
        "--transcriber-token", default=token.get_secret_value() if token is not None else None
    )
    pool.add_argument("--out", dest="out_dir", type=Path, default=Path("vp-out"))
    pool.add_argument("--max-duration", type=float)
    pool.add_argument("--join-timeout", type=float)
    pool.add_argument("--alone-timeout", type=float)
    pool.add_argument("--engine")
    pool.add_argument("--json", dest="json_output", action="store_true")


def _configs(args: argparse.Namespace) -> list[Any]:
    from vp.config import JoinConfig, new_vp_id
    from vp.pool import check_distinct, load_pool_file

    shared = {k: getattr(args, k) for k in _SHARED if getattr(args, k) is not None}
    if bool(args.urls) == bool(args.config):
        raise SystemExit("vp pool: give meeting URLs or --config FILE (one of the two)")
    if args.config:
        configs = load_pool_file(args.config, shared)
        # Without an out_dir of its own, a meeting writes to OUT/<vp_id>.
        configs = [
            c if c.out_dir is not None else c.model_copy(update={"out_dir": args.out_dir / c.vp_id})
            for c in configs
        ]
    else:
        configs = []
        for url in args.urls:
            vp_id = new_vp_id()
            configs.append(
                JoinConfig(meeting_url=url, vp_id=vp_id, out_dir=args.out_dir / vp_id, **shared)
            )
    check_distinct(configs)
    return configs


def main(args: argparse.Namespace) -> int:
    from vp.errors import ConfigError

    try:
        configs = _configs(args)
    except ValidationError as exc:
        print(f"vp pool: invalid options: {describe_validation_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, SystemExit) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    from vp.pool import run_pool

    return asyncio.run(run_pool(configs, json_output=args.json_output))
