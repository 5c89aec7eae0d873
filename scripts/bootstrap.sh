#!/usr/bin/env bash
# Prepares a fresh checkout: system packages, then a project venv at .venv with vp and its
# dev dependencies. Idempotent and quick when nothing changed (a stamp of pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-packages.sh

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [[ -z "$PYTHON" ]]; then
  echo "vp needs Python 3.11 or newer" >&2
  exit 1
fi

stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)

# The project venv and checkov's own venv (see the iac-scan extra in pyproject.toml for why)
# are independent: on a fresh checkout they install side by side, which takes about as long
# as the larger of the two instead of both.
install_project() {
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  if [[ ! -f .venv/.bootstrap-stamp || "$(cat .venv/.bootstrap-stamp)" != "$stamp" ]]; then
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e '.[dev]' >&2
    echo "$stamp" > .venv/.bootstrap-stamp
  fi
}
install_checkov() {
  if [[ ! -x .venv-checkov/bin/checkov || ! -f .venv-checkov/.bootstrap-stamp ||
        "$(cat .venv-checkov/.bootstrap-stamp)" != "$stamp" ]]; then
    [[ -x .venv-checkov/bin/python ]] || "$PYTHON" -m venv .venv-checkov
    spec=$("$PYTHON" -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["iac-scan"]))')
    # shellcheck disable=SC2086 # one word per requirement
    .venv-checkov/bin/python -m pip install -q $spec >&2
    echo "$stamp" > .venv-checkov/.bootstrap-stamp
  fi
}
# Each runs in a background subshell, where `set -e` still stops it at the first failure.
install_project &
project_pid=$!
install_checkov &
checkov_pid=$!
project_rc=0
wait "$project_pid" || project_rc=$?
checkov_rc=0
wait "$checkov_pid" || checkov_rc=$?
if ((project_rc != 0 || checkov_rc != 0)); then
  echo "bootstrap: installing Python packages failed (project venv: exit $project_rc," \
       "checkov venv: exit $checkov_rc)" >&2
  exit 1
fi
