"""Pool mode input: the pool file, distinct ids and directories, and `vp pool` usage errors
(exit 1, nothing started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vp import pool_cli
from vp.cli import build_parser
from vp.config import JoinConfig
from vp.errors import ConfigError
from vp.pool import check_distinct, load_pool_file


def main(argv: list[str]) -> int:
    # vp.cli.main without its logging set-up (which would bind structlog to pytest's capture).
    args = build_parser().parse_args(argv)
    assert args.command == "pool"
    return pool_cli.main(args)


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "meetings.json"
    path.write_text(json.dumps(data))
    return path


def test_pool_file_applies_defaults_then_command_line_then_meeting(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "defaults": {"name": "Default", "max_duration": 60, "platform": "janus"},
            "meetings": [
                {"meeting_url": "https://a.example/x", "vp_id": "a"},
                {"meeting_url": "https://b.example/y", "vp_id": "b", "max_duration": 5},
            ],
        },
    )
    a, b = load_pool_file(path, {"max_duration": 30.0, "name": "Cli"})
    assert (a.vp_id, a.name, a.max_duration, a.platform) == ("a", "Cli", 30.0, "janus")
    assert (b.vp_id, b.max_duration) == ("b", 5)


def test_pool_file_may_be_a_bare_list(tmp_path: Path) -> None:
    (only,) = load_pool_file(write(tmp_path, [{"meeting_url": "https://a.example/x"}]))
    assert only.meeting_url == "https://a.example/x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"meetings": []}, "meetings"),
        ({"meetings": [{"meeting_url": "https://a.example/x", "pasword": "x"}]}, "meetings[0]"),
        ({"meetings": [{"name": "no url"}]}, "meeting_url"),
        ({"meetings": [{"meeting_url": "u"}], "extra": 1}, "extra"),
        ({"meetings": [{"meeting_url": "u", "vp_id": "bad id!"}]}, "vp_id"),
    ],
)
def test_bad_pool_files_name_the_field(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pool_file(write(tmp_path, data))
    assert message in str(info.value)


def test_unreadable_pool_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="JSON"):
        load_pool_file(bad)
    with pytest.raises(ConfigError):
        load_pool_file(tmp_path / "missing.json")


def test_ids_and_output_directories_must_be_distinct(tmp_path: Path) -> None:
    a = JoinConfig(meeting_url="u", vp_id="a", out_dir=tmp_path / "a")
    b = JoinConfig(meeting_url="u", vp_id="b", out_dir=tmp_path / "b")
    check_distinct([a, b])
    with pytest.raises(ConfigError, match="vp_id"):
        check_distinct([a, a.model_copy(update={"out_dir": tmp_path / "c"})])
    with pytest.raises(ConfigError, match="out_dir"):
        check_distinct([a, b.model_copy(update={"out_dir": tmp_path / "a"})])


def test_pool_secrets_are_not_echoed_on_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"meetings": [{"meeting_url": "u", "passcode": "s3cret-pass", "x": 1}]})
    assert main(["pool", "--config", str(path)]) == 1
    assert "s3cret-pass" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["pool"],  # neither URLs nor --config
        ["pool", "https://a.example/x", "--config", "m.json"],  # both
        ["pool", "https://a.example/x", "--max-duration", "-1"],
        ["pool", "https://a.example/x", "--transcriber-url", "http://not-ws"],
    ],
)
def test_usage_errors_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    assert capsys.readouterr().err
