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
# Chromium and the fonts (Latin, CJK, emoji): the same script the README and CI run.
COPY scripts/install-system-packages.sh /tmp/install-system-packages.sh
RUN bash /tmp/install-system-packages.sh --runtime-only \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/install-system-packages.sh \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/vp/home \
        --shell /usr/sbin/nologin vp \
    && install -d -o vp -g vp -m 0700 /var/lib/vp /var/lib/vp/home /var/lib/vp/tmp

COPY --from=builder /opt/venv /opt/venv

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
