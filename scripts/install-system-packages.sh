#!/usr/bin/env bash
# Installs the Debian packages vp needs. Idempotent: apt runs only when a package is missing.
# The Dockerfile runs this same script with --runtime-only, so the image installs a subset of
# what CI installs (tests/deploy/test_dockerfile.py checks it).
#   install-system-packages.sh                  run time + development (README, CI)
#   install-system-packages.sh --runtime-only   run time only (the VP task image)
#   install-system-packages.sh --list [...]     print the package names, install nothing
#
# Run time (the task image installs exactly these):
#   chromium-headless-shell Debian's Chromium without the desktop layer: every VP runs it
#                           (vp.browser.find_chromium; ~70 MB PSS less per Chromium, bench/)
#   libatomic1              Playwright's bundled node driver links it; slim Debian bases lack
#                           it, and without it no browser ever starts
#   fonts-liberation        Latin (metric-compatible with Arial, Times, Courier)
#   fonts-noto-color-emoji  emoji
#   fonts-wqy-zenhei        CJK (Chinese, Japanese kana, Korean), 16 MB vs 90 MB for noto-cjk
# Development and CI add:
#   chromium                the desktop build: simulated participants and tests
#   janus                   the WebRTC server used by `vp demo` and the integration tests
#   janus-demos             its AudioBridge demo page (the `janus` platform)
#   espeak-ng               speech synthesis for the simulated participant
#   podman, mmdebstrap      build the task image for real (tests/deploy/test_image.py)
set -euo pipefail

RUNTIME_PACKAGES=(chromium-headless-shell libatomic1 fonts-liberation fonts-noto-color-emoji fonts-wqy-zenhei)
DEV_PACKAGES=(chromium janus janus-demos espeak-ng podman mmdebstrap)

runtime_only=0
list_only=0
for arg in "$@"; do
  case "$arg" in
    --runtime-only) runtime_only=1 ;;
    --list) list_only=1 ;;
    *) echo "usage: $0 [--runtime-only] [--list]" >&2; exit 1 ;;
  esac
done

PACKAGES=("${RUNTIME_PACKAGES[@]}")
if ((runtime_only == 0)); then
  PACKAGES+=("${DEV_PACKAGES[@]}")
fi
if ((list_only == 1)); then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "installing system packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
