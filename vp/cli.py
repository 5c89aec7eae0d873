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
from typing import Any, NoReturn

from pydantic import SecretStr, ValidationError

from vp import log as vplog
from vp import pool_cli
from vp.config import JoinConfig
from vp.errors import describe_validation_error
from vp.settings import JOIN_FIELDS, VpSettings

EXIT_USAGE = 1


class UsageParser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; contract 1 reserves 2 for FAILED, so exit 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# The settings the parser's defaults come from (all plain strings: reading them cannot fail
# on an unrelated bad variable, which `vp run` must report in the store instead).
PARSER_FIELDS = frozenset(
    {"log_level", "engine", "transcriber_jwt_secret", "vp_id", "db", "auth_secret"}
    | {"transcriber_url", "transcriber_token"}
)


# `vp demo` runs the replicas and the local meeting: a source checkout has them (the dev
# install), a wheel or the task image leaves them out (pyproject.toml, .dockerignore).
DEV_ONLY_MODULES = frozenset(
    {"vp.demo", "vp.localmeeting", "platforms.replicas"}
    | {"vp.localmeeting.meeting", "vp.localmeeting.participant", "platforms.replicas.server"}
)
DEV_ONLY_DEMO = (
    "vp demo is a dev-only command: it needs the replicas and the local meeting, which this"
    " install leaves out (the task image has only what a VP needs). Run it from a source"
    " checkout: ./dev demo"
)


def build_parser(settings: VpSettings | None = None) -> argparse.ArgumentParser:
    """The ``vp`` parser; defaults that come from the environment are ``settings``'."""
    env = settings if settings is not None else VpSettings.from_env(only=PARSER_FIELDS)
    parser = UsageParser(prog="vp", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--log-level", default=env.log_level)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    _add_join(sub)

    demo = sub.add_parser("demo", help="run everything offline: Janus, a speaker, a VP")
    demo.add_argument("--out", dest="out_dir", default="demo-out")
    demo.add_argument("--duration", type=float, default=30.0)
    demo.add_argument(
        "--platform",
        default="janus",
        choices=["janus", "zoom", "teams", "chime", "meet", "webex"],
    )
    demo.add_argument(
        "--voice", default="off", choices=["off", "espeak-ng", "polly"], help="the VP speaks"
    )

    tr = sub.add_parser("transcriber", help="run the local reference transcriber server")
    tr.add_argument("--host", default="127.0.0.1")
    tr.add_argument("--port", type=int, default=8765)
    tr.add_argument("--engine", default=env.engine or "pocketsphinx")
    tr.add_argument("--out", dest="out_dir", default=None)
    tr.add_argument(
        "--jwt-secret",
        default=_secret(env.transcriber_jwt_secret),
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
    pool_cli.add_parser(sub, env)

    run = sub.add_parser("run", help="run one stored VP (the ECS task's entrypoint)")
    run.add_argument("--vp-id", default=env.vp_id, help="the VP to run (env VP_ID)")
    run.add_argument("--db", default=env.db, help="SQLite store when VP_TABLE_NAME is unset")
    run.add_argument("--json", dest="json_output", action="store_true")

    serve = sub.add_parser("serve", help="run the local control plane: HTTP API + web console")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--db", default=env.db or "vp-serve/vps.db")
    serve.add_argument(
        "--auth-secret",
        default=_secret(env.auth_secret),
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


def _add_join(sub: Any) -> None:
    """``vp join``'s options. Their defaults are None: an option not given is taken from
    its environment variable (vp.settings) in :func:`_join_config`."""
    join = sub.add_parser("join", help="send a virtual participant into a meeting")
    join.add_argument("url", nargs="?", metavar="URL")
    join.add_argument("--platform")
    join.add_argument("--name")
    join.add_argument("--passcode")
    join.add_argument("--transcriber-url")
    join.add_argument("--transcriber-token")
    join.add_argument("--call-id")
    join.add_argument("--out", dest="out_dir")
    join.add_argument("--max-duration", type=float)
    join.add_argument("--join-timeout", type=float)
    join.add_argument("--alone-timeout", type=float)
    join.add_argument(
        "--transcriber-wait",
        type=float,
        help="seconds to retry an unreachable transcriber before failing (default 30)",
    )
    join.add_argument(
        "--transcriber-buffer",
        type=float,
        help="seconds of audio kept for replay while the transcriber is away (default 30)",
    )
    join.add_argument("--vp-id")
    join.add_argument("--engine", help="local transcriber engine (pocketsphinx)")
    join.add_argument(
        "--intro-message",
        help="posted in chat after joining ({name}, {invited_by} are filled in; '' disables)",
    )
    join.add_argument("--exit-message", help="posted in chat before leaving ('' disables)")
    join.add_argument("--invited-by")
    join.add_argument("--assistant-engine", help="local (default) or bedrock")
    join.add_argument(
        "--wake-phrase",
        dest="wake_phrases",
        action="append",
        default=None,
        help="wake phrase for questions (repeatable; env VP_WAKE_PHRASES, '|'-separated)",
    )
    join.add_argument("--bedrock-model-id")
    join.add_argument(
        "--voice",
        choices=["off", "espeak-ng", "polly"],
        help="speak the intro and answers in the meeting (env VP_VOICE; default off)",
    )
    join.add_argument("--voice-id", help="espeak-ng voice (en-us) or Polly VoiceId (Joanna)")
    join.add_argument(
        "--polly-engine",
        choices=["standard", "neural", "generative", "long-form"],
        help="Polly engine (default neural)",
    )
    join.add_argument(
        "--memory-limit",
        help="memory guard limit, bytes or e.g. 512M (default: the cgroup's; README)",
    )
    join.add_argument("--json", dest="json_output", action="store_true")


def _join_config(args: argparse.Namespace, settings: VpSettings) -> JoinConfig:
    """Command-line options, else their environment variables (contract 1)."""
    fields = settings.join_fields()
    given = {"meeting_url": args.url}
    given.update({name: getattr(args, name) for name in JOIN_FIELDS if name != "meeting_url"})
    fields.update({name: value for name, value in given.items() if value is not None})
    if not fields.get("meeting_url"):
        raise SystemExit("vp join: a meeting URL is required (argument or VP_MEETING_URL)")
    return JoinConfig(**fields, json_output=args.json_output)


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
            config = _join_config(args, VpSettings.from_env())
        except ValidationError as exc:
            print(f"vp join: invalid options: {describe_validation_error(exc)}", file=sys.stderr)
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
        try:
            from vp.demo import run_demo
        except ModuleNotFoundError as exc:
            if exc.name not in DEV_ONLY_MODULES:
                raise
            print(DEV_ONLY_DEMO, file=sys.stderr)
            return 1
        return asyncio.run(run_demo(Path(args.out_dir), args.duration, args.platform, args.voice))
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
