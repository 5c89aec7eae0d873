#!/usr/bin/env bash
# Builds the VP task image with Debian's podman, as the suite does (tests/deploy/test_image.py).
#   scripts/build-image.sh [TAG]                    base: python:3.11-slim-bookworm (a registry)
#   VP_IMAGE_BASE=stand-in scripts/build-image.sh   base: a Debian bookworm root made here
# The stand-in base is for machines that cannot pull the official python image: mmdebstrap
# makes a minimal bookworm root with Debian's Python 3.11 and pip, /usr/local/bin/python and
# pip where the official image has them, and this machine's CA bundle (pip must trust the
# index through the local TLS proxy). Its tarball is cached in $VP_IMAGE_CACHE (default
# ~/.cache/vp-image) for a week, keyed by this script's recipe.
# Prints the image's tag on stdout when done; build output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-localhost/vp:latest}"
base="${VP_IMAGE_BASE:-python:3.11-slim-bookworm}"

if [[ "$base" == stand-in ]]; then
  cache="${VP_IMAGE_CACHE:-$HOME/.cache/vp-image}"
  mkdir -p "$cache"
  recipe=(--variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*'
    --customize-hook='ln -sf /usr/bin/python3 "$1/usr/local/bin/python"'
    --customize-hook='printf "#!/bin/sh\nexec /usr/local/bin/python -m pip \"\$@\"\n" > "$1/usr/local/bin/pip" && chmod 0755 "$1/usr/local/bin/pip"'
    --customize-hook='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf"'
    --customize-hook='cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"'
  )
  mirrors=("deb http://deb.debian.org/debian bookworm main"
    "deb http://deb.debian.org/debian bookworm-updates main"
    "deb http://deb.debian.org/debian-security bookworm-security main")
  key=$(printf '%s\n' "${recipe[@]}" "${mirrors[@]}" | cat - /etc/ssl/certs/ca-certificates.crt |
    sha256sum | cut -c1-16)
  tarball="$cache/bookworm-python-$key.tar"
  if [[ ! -f "$tarball" ]] || [[ -n "$(find "$tarball" -mtime +7)" ]]; then
    echo "making the stand-in base (mmdebstrap) into $tarball" >&2
    mmdebstrap --quiet --format=tar "${recipe[@]}" bookworm "$tarball.partial" "${mirrors[@]}" >&2
    mv "$tarball.partial" "$tarball"
  fi
  base="localhost/vp-python-base:$key"
  if ! podman image exists "$base"; then
    podman import --quiet \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["python3"]' "$tarball" "$base" >&2
  fi
fi

# --isolation chroot: podman's OCI runtime cannot start containers on every machine (cgroups,
# rlimits), and a build needs nothing more. --format docker keeps the HEALTHCHECK.
podman build --isolation chroot --network host --format docker \
  --build-arg PYTHON_IMAGE="$base" --tag "$tag" . >&2
echo "$tag"
