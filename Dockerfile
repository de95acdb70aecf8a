# loadgen's container image: the CLI (`loadgen run`, `loadgen demo-target`, ...)
# on Python 3.11, as a non-root user, with nothing but wheels installed (into a
# virtualenv at /opt/loadgen).
#
#   podman build -t loadgen:0.1.0 .                  # or: docker build (BuildKit)
#   podman run --rm loadgen:0.1.0 --version
#   podman run --rm --network host -v "$PWD/scenarios:/work/scenarios:ro" \
#       loadgen:0.1.0 run scenarios/content.py --host http://127.0.0.1:8000
#
# RUN --mount needs BuildKit (the default builder since Docker 23) or podman/
# buildah; Debian's docker.io has no BuildKit, Debian's podman builds it.
#
# Reproducible inputs: the base image is the build argument BASE, by default
# pinned by the digest of its multi-platform index (python:3.11.16-slim-bookworm
# as published on 2026-09-19, per docker-library/repo-info); every runtime
# dependency is pinned by deploy/docker/constraints.txt (regenerate it with
# `python tests/test_packaging.py --write`) and the build backend by
# deploy/docker/build-requirements.txt. To move to a newer base, replace the tag
# and the digest in BASE below.
#
# Any Debian-like base with python3 (3.11+) and its venv module will do, which is
# how tests/test_image.py builds it where the registry cannot be reached: a
# debootstrapped Debian 12 passed as BASE (tests/image/make-base.sh). pip trusts
# the system CA bundle, so a proxy's CA can be given to the build by mounting it:
#
#   podman build --build-arg BASE=localhost/my-base -v /etc/ssl/certs:/etc/ssl/certs:ro -t loadgen:0.1.0 .

ARG BASE=docker.io/library/python:3.11.16-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# --- builder: a wheel of loadgen and a wheel of every dependency --------------
FROM ${BASE} AS builder

# A compiler for the dependencies that have no binary wheel on some platforms
# (hdrhistogram has none for arm64). It stays in this stage. Versions are not
# pinned: Debian replaces them in every point release, and nothing compiled here
# reaches the final image except through the wheels of pinned sources.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

# PIP_CERT: the system bundle rather than pip's own, so that a mounted CA (a
# proxy's) is trusted whichever pip the base ships.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_CONSTRAINT=/src/deploy/docker/constraints.txt \
    SOURCE_DATE_EPOCH=1704067200 \
    PATH=/opt/build/bin:$PATH

WORKDIR /src
# The build backend first, at pinned versions, in a virtualenv of its own: the
# base's setuptools may be too old for pyproject.toml (python:3.11 ships 65.5,
# which rejects `license = "MIT"`), and Debian's pip refuses to install into
# the system Python (PEP 668).
COPY deploy/docker/constraints.txt deploy/docker/build-requirements.txt deploy/docker/
RUN python3 -m venv /opt/build \
    && pip install --no-cache-dir --requirement deploy/docker/build-requirements.txt

# The dependencies next, in a layer of their own: editing loadgen's sources
# does not download them again.
RUN pip wheel --wheel-dir /wheels --requirement deploy/docker/constraints.txt

COPY pyproject.toml README.md ./
COPY loadgen/ loadgen/
COPY schema/ schema/
COPY collectors/ collectors/
COPY reports/ reports/

# loadgen itself, built with the pinned backend above (nothing downloaded),
# then whatever it needs that the constraints did not list.
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && pip wheel --wheel-dir /wheels --find-links /wheels /wheels/loadgen-*.whl

# --- final: the wheels installed, nothing else ---------------------------------
FROM ${BASE}

ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="loadgen" \
      org.opencontainers.image.description="An async HTTP load generator with coordinated-omission-free latencies and a performance-regression gate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="${BASE}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/loadgen/bin:$PATH

# Only from the builder's wheels: no index, no compiler, no wheel left behind
# (the bind mount is not a layer). A virtualenv, so that the base's Python
# (/usr/local or Debian's /usr) stays as it is. pip byte-compiles what it
# installs, so a read-only root filesystem costs no start-up time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python3 -m venv /opt/loadgen \
    && /opt/loadgen/bin/pip install --no-cache-dir --no-index --find-links=/wheels /wheels/loadgen-*.whl \
    && groupadd --system --gid 10001 loadgen \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /work --shell /usr/sbin/nologin loadgen \
    && mkdir -p /work \
    && chown 10001:10001 /work

# The working directory is the user's home: the default results store
# (sqlite:///loadgen.db) and the spool (~/.local/state/loadgen/spool) land here.
# Mount a volume on /work to keep them.
WORKDIR /work
USER 10001:10001

# 9646: `loadgen run --metrics-port 9646`; 8000: `loadgen demo-target`.
EXPOSE 9646 8000

# A one-shot CLI, not a service: a health check means nothing for `run`
# (the compose stack checks the demo target over HTTP itself).
HEALTHCHECK NONE

ENTRYPOINT ["loadgen"]
CMD ["--help"]
