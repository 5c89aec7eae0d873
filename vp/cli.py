"""The ``vp`` command line (contract 1).

Every ``vp join`` option also reads an environment variable, so the same entrypoint runs in
an ECS task. Exit codes: 0 when the VP ends COMPLETED (or CANCELLED), 2 when it ends FAILED,
1 for usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from vp import log as vplog
from vp import pool_cli
from vp.config import JoinConfig

EXIT_USAGE = 1

# option dest → environment variable
JOIN_ENV = {
    "meeting_url": "VP_MEETING_URL",
    "platform": "VP_PLATFORM",
    "name": "VP_NAME",
    "passcode": "VP_PASSCODE",
    "transcriber_url": "VP_TRANSCRIBER_URL",
    "transcriber_token": "VP_TRANSCRIBER_TOKEN",
    "call_id": "VP_CALL_ID",
    "out_dir": "VP_OUT_DIR",
    "max_duration": "VP_MAX_DURATION",
    "join_timeout": "VP_JOIN_TIMEOUT",
    "alone_timeout": "VP_ALONE_TIMEOUT",
    "transcriber_wait": "VP_TRANSCRIBER_WAIT",
    "transcriber_buffer": "VP_TRANSCRIBER_BUFFER",
    "vp_id": "VP_ID",
    "engine": "VP_TRANSCRIBER_ENGINE",
    "intro_message": "VP_INTRO_MESSAGE",
    "exit_message": "VP_EXIT_MESSAGE",
    "invited_by": "VP_INVITED_BY",
    "assistant_engine": "VP_ASSISTANT_ENGINE",
    "wake_phrases": "VP_WAKE_PHRASES",
    "bedrock_model_id": "VP_BEDROCK_MODEL_ID",
}


class UsageParser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; contract 1 reserves 2 for FAILED, so exit 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _env(dest: str, *, keep_empty: bool = False) -> str | None:
    value = os.environ.get(JOIN_ENV[dest])
    if value is None or (value == "" and not keep_empty):
        return None
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(prog="vp", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log-level", default=os.environ.get("VP_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)

    join = sub.add_parser("join", help="send a virtual participant into a meeting")
    join.add_argument("url", nargs="?", default=_env("meeting_url"), metavar="URL")
    join.add_argument("--platform", default=_env("platform"))
    join.add_argument("--name", default=_env("name"))
    join.add_argument("--passcode", default=_env("passcode"))
    join.add_argument("--transcriber-url", default=_env("transcriber_url"))
    join.add_argument("--transcriber-token", default=_env("transcriber_token"))
    join.add_argument("--call-id", default=_env("call_id"))
    join.add_argument("--out", dest="out_dir", default=_env("out_dir"))
    join.add_argument("--max-duration", type=float, default=_env("max_duration"))
    join.add_argument("--join-timeout", type=float, default=_env("join_timeout"))
    join.add_argument("--alone-timeout", type=float, default=_env("alone_timeout"))
    join.add_argument(
        "--transcriber-wait",
        type=float,
        default=_env("transcriber_wait"),
        help="seconds to retry an unreachable transcriber before failing (default 30)",
    )
    join.add_argument(
        "--transcriber-buffer",
        type=float,
        default=_env("transcriber_buffer"),
        help="seconds of audio kept for replay while the transcriber is away (default 30)",
    )
    join.add_argument("--vp-id", default=_env("vp_id"))
    join.add_argument(
        "--engine", default=_env("engine"), help="local transcriber engine (pocketsphinx)"
    )
    join.add_argument(
        "--intro-message",
        default=_env("intro_message", keep_empty=True),
        help="posted in chat after joining ({name}, {invited_by} are filled in; '' disables)",
    )
    join.add_argument(
        "--exit-message",
        default=_env("exit_message", keep_empty=True),
        help="posted in chat before leaving ('' disables)",
    )
    join.add_argument("--invited-by", default=_env("invited_by"))
    join.add_argument(
        "--assistant-engine", default=_env("assistant_engine"), help="local (default) or bedrock"
    )
    join.add_argument(
        "--wake-phrase",
        dest="wake_phrases",
        action="append",
        default=None,
        help="wake phrase for questions (repeatable; env VP_WAKE_PHRASES, '|'-separated)",
    )
    join.add_argument("--bedrock-model-id", default=_env("bedrock_model_id"))
    join.add_argument("--json", dest="json_output", action="store_true")

    demo = sub.add_parser("demo", help="run everything offline: Janus, a speaker, a VP")
    demo.add_argument("--out", dest="out_dir", default="demo-out")
    demo.add_argument("--duration", type=float, default=30.0)
    demo.add_argument("--platform", default="janus", choices=["janus", "zoom", "teams", "chime"])

    tr = sub.add_parser("transcriber", help="run the local reference transcriber server")
    tr.add_argument("--host", default="127.0.0.1")
    tr.add_argument("--port", type=int, default=8765)
    tr.add_argument("--engine", default=os.environ.get("VP_TRANSCRIBER_ENGINE", "pocketsphinx"))
    tr.add_argument("--out", dest="out_dir", default=None)
    tr.add_argument(
        "--jwt-secret",
        default=os.environ.get("VP_TRANSCRIBER_JWT_SECRET"),
        help="require Authorization: Bearer <HS256 JWT> signed with this secret",
    )
    tr.add_argument(
        "--wake-phrase",
        dest="wake_phrases",
        action="append",
        default=None,
        help="wake phrase to spot (pocketsphinx; repeatable; default “OK Assistant”)",
    )
    sub.add_parser("health", help="container health check: exit 0 while a vp process is alive")
    pool_cli.add_parser(sub)

    run = sub.add_parser("run", help="run one stored VP (the ECS task's entrypoint)")
    run.add_argument("--vp-id", default=_env("vp_id"), help="the VP to run (env VP_ID)")
    run.add_argument(
        "--db", default=os.environ.get("VP_DB"), help="SQLite store when VP_TABLE_NAME is unset"
    )
    run.add_argument("--json", dest="json_output", action="store_true")

    serve = sub.add_parser("serve", help="run the local control plane: HTTP API + web console")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--db", default=os.environ.get("VP_DB", "vp-serve/vps.db"))
    serve.add_argument(
        "--auth-secret",
        default=os.environ.get("VP_AUTH_SECRET"),
        help="HS256 secret of the bearer JWTs (env VP_AUTH_SECRET keeps it out of ps)",
    )
    serve.add_argument("--max-concurrent", type=int, default=2)
    serve.add_argument("--out", dest="out_dir", default=None, help="VP output (default: by --db)")
    serve.add_argument("--launches-per-minute", type=int, default=10, help="per owner")
    serve.add_argument(
        "--webhook-retry-hours",
        type=float,
        default=24.0,
        help="retry a failing webhook delivery this long (contract 5)",
    )
    serve.add_argument(
        "--calendar-poll",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="fetch every calendar feed this often (contract 5)",
    )
    return parser


def _join_config(args: argparse.Namespace) -> JoinConfig:
    if not args.url:
        raise SystemExit("vp join: a meeting URL is required (argument or VP_MEETING_URL)")
    fields = {
        dest: getattr(args, dest)
        for dest in JOIN_ENV
        if dest != "meeting_url" and getattr(args, dest) is not None
    }
    if args.wake_phrases is None and _env("wake_phrases"):
        fields["wake_phrases"] = str(_env("wake_phrases")).split("|")
    fields["meeting_url"] = args.url
    fields["json_output"] = args.json_output
    if "out_dir" in fields:
        fields["out_dir"] = Path(fields["out_dir"])
    return JoinConfig(**fields)


async def _run_join(config: JoinConfig) -> int:
    from vp.runner import VirtualParticipant
    from vp.status import StatusSink, StreamSink

    sinks: list[StatusSink] = [StreamSink()] if config.json_output else []
    vp = VirtualParticipant(config, sinks=sinks)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, vp.stop)
    result = await vp.run()
    return result.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Everything vp writes (output folders, recordings, transcripts, logs, the control
    # plane's database) is the owner's only: folders 0700, files 0600.
    os.umask(0o077)
    vplog.configure(args.log_level)
    if args.command == "join":
        try:
            config = _join_config(args)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            print(f"vp join: invalid options: {problems}", file=sys.stderr)
            return EXIT_USAGE
        except SystemExit as exc:
            print(exc, file=sys.stderr)
            return EXIT_USAGE
        return asyncio.run(_run_join(config))
    if args.command == "pool":
        return pool_cli.main(args)
    if args.command == "health":
        from vp.health import main as health_main

        return health_main()
    if args.command == "run":
        from scheduler.run import main_run

        return main_run(args.vp_id, db=args.db, json_output=args.json_output)
    if args.command == "serve":
        if not args.auth_secret or len(args.auth_secret.encode()) < 32:
            print("vp serve: --auth-secret (>= 32 bytes) is required", file=sys.stderr)
            return EXIT_USAGE
        if args.max_concurrent < 1 or args.launches_per_minute < 1:
            print(
                "vp serve: --max-concurrent and --launches-per-minute must be >= 1", file=sys.stderr
            )
            return EXIT_USAGE
        if not args.webhook_retry_hours > 0 or not args.calendar_poll >= 1:
            print(
                "vp serve: --webhook-retry-hours must be > 0 and --calendar-poll >= 1",
                file=sys.stderr,
            )
            return EXIT_USAGE
        from scheduler.serve import serve

        return serve(
            args.host,
            args.port,
            Path(args.db),
            args.auth_secret,
            out_root=Path(args.out_dir) if args.out_dir else None,
            max_concurrent=args.max_concurrent,
            launches_per_minute=args.launches_per_minute,
            webhook_retry_hours=args.webhook_retry_hours,
            calendar_poll=args.calendar_poll,
        )
    if args.command == "demo":
        from vp.demo import run_demo

        return asyncio.run(run_demo(Path(args.out_dir), args.duration, args.platform))
    if args.command == "transcriber":
        from vp.transcriber.server import serve_forever

        try:
            from vp.assistant.parsing import DEFAULT_WAKE_PHRASES
            from vp.transcriber.engines import create_engine

            wake = tuple(args.wake_phrases or DEFAULT_WAKE_PHRASES)
            asyncio.run(
                serve_forever(
                    args.host,
                    args.port,
                    functools.partial(create_engine, args.engine, wake_phrases=wake),
                    Path(args.out_dir) if args.out_dir else None,
                    args.jwt_secret,
                )
            )
        except KeyboardInterrupt:
            pass
        return 0
    parser.error(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
