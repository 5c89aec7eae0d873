#!/usr/bin/env bash
# Installs the Debian packages vp needs at run time. Idempotent: apt runs only when a
# package is missing. The Dockerfile runs this same script, so CI and the image agree.
#   chromium     the browser, driven by Playwright through executable_path
#   janus        the WebRTC server used by `vp demo` and the integration tests
#   janus-demos  its AudioBridge demo page (the `janus` platform)
#   espeak-ng    speech synthesis for the simulated participant
#   fonts-*      so meeting pages render names in any script
set -euo pipefail

PACKAGES=(chromium janus janus-demos espeak-ng fonts-liberation fonts-noto-color-emoji)
if [[ "${1:-}" == "--runtime-only" ]]; then
  PACKAGES=(chromium fonts-liberation fonts-noto-color-emoji fonts-noto-cjk)
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
