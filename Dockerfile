# syntax=docker/dockerfile:1
# The VP task image: one `vp run` per meeting on ECS Fargate (README, "Deploying to AWS").
#   docker build -t vp .
#   docker run --rm --init -e VP_ID=... -e VP_TABLE_NAME=... vp
# tests/deploy/test_dockerfile.py keeps it honest: the system packages come from the same
# script CI runs, and the project is installed from pyproject.toml without [dev].

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the project and its runtime dependencies as wheels, installed into a venv ------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY vp ./vp
COPY platforms ./platforms
COPY scheduler ./scheduler
# --only-binary: every dependency ships a manylinux wheel, so no compiler is needed even
# here; the local project is the only thing built. `[aws]` brings boto3 (the DynamoDB store,
# KMS); neither `[transcribe]` (the aws-transcribe engine of a standalone transcriber, not
# used by the task) nor `[dev]` (pytest, ruff, mypy, moto, linters) enters the image.
RUN python -m venv /opt/venv \
    && pip wheel --no-cache-dir --only-binary=:all: --wheel-dir /wheels ".[aws]" \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels "vp[aws]" \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

# --- runtime ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Headless Chromium, libatomic1 and the fonts (Latin, CJK, emoji): the run-time part of the
# script the README and CI run. dpkg leaves out what no task reads: documentation (licences
# stay), manuals, translations, Chromium's UI strings other than en-US (--lang=en-US) and
# its Vulkan validation layer (a debugging aid).
# chromium-common depends on desktop helpers (x11-utils, xdg-utils) that pull in Mesa's GL
# drivers with LLVM, and perl: ~210 MB a headless shell with --disable-gpu never loads (it
# renders with its own SwiftShader). They are purged, leaving dpkg's dependency record
# knowingly incomplete; nothing runs apt in a task, and the image test proves a VP still joins.
COPY scripts/install-system-packages.sh /tmp/install-system-packages.sh
RUN printf '%s\n' \
        'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
        'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/lintian/*' \
        'path-exclude=/usr/lib/chromium/locales/*' \
        'path-include=/usr/lib/chromium/locales/en-US.pak' \
        'path-exclude=/usr/lib/chromium/libVkLayer_khronos_validation.so' \
        > /etc/dpkg/dpkg.cfg.d/vp-slim \
    && bash /tmp/install-system-packages.sh --runtime-only \
    && dpkg --purge --force-depends x11-utils xdg-utils libgl1 libglx0 libglx-mesa0 \
        libgl1-mesa-dri libllvm15 libz3-4 perl libperl5.36 perl-modules-5.36 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/debconf/*-old \
        /var/log/apt /var/log/dpkg.log /tmp/install-system-packages.sh \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/vp/home \
        --shell /usr/sbin/nologin vp \
    && install -d -o vp -g vp -m 0700 /var/lib/vp /var/lib/vp/home /var/lib/vp/tmp

COPY --from=builder /opt/venv /opt/venv
# Fail the build, not the meeting: the two native programs every VP starts (Playwright's node
# driver and the headless shell) must find all their shared libraries in this image. ldd
# names every missing one at once; running them proves the loader is content.
RUN node="$(/opt/venv/bin/python -c 'import pathlib, playwright; print(pathlib.Path(playwright.__file__).parent / "driver" / "node")')" \
    && shell=/usr/lib/chromium/chromium-headless-shell \
    && if ldd "$node" "$shell" | grep 'not found'; then \
        echo "the node driver or the headless shell lacks a shared library" >&2; exit 1; fi \
    && "$node" --version && "$shell" --version

# Configuration comes from the environment (contract 1 and the task definition): VP_ID,
# VP_TABLE_NAME, VP_TRANSCRIBER_URL, VP_TRANSCRIBER_TOKEN, VP_PASSCODE_KMS_KEY_ID, ...
# /var/lib/vp is the only place written at run time (home, Chromium's profile and shared
# memory via TMPDIR, the output files in vp-out/<vp_id>), so the task runs with a read-only
# root filesystem and one scratch volume there; ECS copies the VOLUME's owner (vp) onto it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/vp/home \
    TMPDIR=/var/lib/vp/tmp \
    XDG_CACHE_HOME=/var/lib/vp/home/.cache \
    XDG_CONFIG_HOME=/var/lib/vp/home/.config
VOLUME ["/var/lib/vp"]

USER 10001:10001
WORKDIR /var/lib/vp

# `python -m vp.health` (same check as `vp health`, without the CLI's imports): healthy while
# the `vp run` process is alive and not stopped.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-m", "vp.health"]

ENTRYPOINT ["vp", "run"]
