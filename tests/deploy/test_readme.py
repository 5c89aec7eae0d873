"""README "Deploying to AWS": its commands match the template, its cost table its arithmetic."""

from __future__ import annotations

import re
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
VCPU_HOUR = 0.04048  # Fargate, us-east-1, Linux/x86, per vCPU-hour
GB_HOUR = 0.004445  # per GB-hour


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Deploying to AWS")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _parameters() -> dict[str, dict[str, object]]:
    template, _ = decode(str(ROOT / "deploy" / "template.yaml"))
    params: dict[str, dict[str, object]] = template["Parameters"]
    return params


def test_deploy_command_sets_every_required_parameter_and_only_real_ones() -> None:
    section = _section()
    deploy = section[section.index("aws cloudformation deploy") :].split("```")[0]
    given = set(re.findall(r"\b([A-Z][A-Za-z0-9]+)=", deploy))
    params = _parameters()
    assert given <= set(params), given - set(params)
    required = {name for name, p in params.items() if "Default" not in p}
    assert required <= given, required - given


def test_documented_defaults_are_the_templates() -> None:
    section = _section()
    params = _parameters()
    assert f"[{params['TaskCpu']['Default']} / {params['TaskMemory']['Default']}," in section
    assert f"`LogRetentionDays` [{params['LogRetentionDays']['Default']}]" in section
    assert f"`CapacityProvider` [{params['CapacityProvider']['Default']}]" in section


def test_cost_table_follows_from_the_list_prices_it_quotes() -> None:
    section = _section()
    assert f"${VCPU_HOUR} per vCPU-hour" in section and f"${GB_HOUR} per GB-hour" in section
    rows = re.findall(
        r"^\| ([0-9.]+) vCPU / ([0-9.]+) GB[^|]*\|[^|]*\|[^|]*"
        r"\| \*\*\$([0-9.]+)\*\* \| ≈ \$([0-9.]+)",
        section,
        re.M,
    )
    assert len(rows) == 2, rows
    for vcpu, gb, hourly, spot in rows:
        expected = float(vcpu) * VCPU_HOUR + float(gb) * GB_HOUR
        assert abs(float(hourly) - expected) < 0.00006, (vcpu, gb, hourly, expected)
        assert abs(float(spot) - expected * 0.3) < 0.00006, (vcpu, gb, spot)
    sizes = {(float(v), float(g)) for v, g, _, _ in rows}
    assert sizes == {(0.25, 0.5), (0.5, 1.0)}
