# loadgen's container image: the CLI (`loadgen run`, `loadgen demo-target`, ...)
# on Python 3.11, as a non-root user, with nothing but wheels installed.
#
#   docker build -t loadgen:0.1.0 .
#   docker run --rm loadgen:0.1.0 --version
#   docker run --rm --network host -v "$PWD/scenarios:/work/scenarios:ro" \
#       loadgen:0.1.0 run scenarios/content.py --host http://127.0.0.1:8000
#
# Needs BuildKit (the default builder since Docker 23) for RUN --mount.
#
# Reproducible inputs: the base image is pinned by the digest of its
# multi-platform index (python:3.11.16-slim-bookworm as published on
# 2026-09-19, per docker-library/repo-info), and every runtime dependency by
# the exact versions in deploy/docker/constraints.txt (regenerate it with
# `python tests/test_packaging.py --write`). To move to a newer base, replace
# both the tag and the digest in the two FROM lines.

# --- builder: a wheel of loadgen and a wheel of every dependency --------------
FROM python:3.11.16-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b AS builder

# A compiler for the dependencies that have no binary wheel on some platforms
# (hdrhistogram has none for arm64). It stays in this stage. Versions are not
# pinned: Debian replaces them in every point release, and nothing compiled here
# reaches the final image except through the wheels of pinned sources.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CONSTRAINT=/src/deploy/docker/constraints.txt \
    SOURCE_DATE_EPOCH=1704067200

WORKDIR /src
# The dependencies first, in a layer of their own: editing loadgen's sources
# does not download them again.
COPY deploy/docker/constraints.txt deploy/docker/constraints.txt
RUN pip wheel --wheel-dir /wheels --requirement deploy/docker/constraints.txt

COPY pyproject.toml README.md ./
COPY loadgen/ loadgen/
COPY schema/ schema/
COPY collectors/ collectors/
COPY reports/ reports/

# loadgen itself, built with the base image's setuptools and wheel (nothing
# downloaded), then whatever it needs that the constraints did not list.
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && pip wheel --wheel-dir /wheels --find-links /wheels /wheels/loadgen-*.whl

# --- final: the wheels installed, nothing else ---------------------------------
FROM python:3.11.16-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="loadgen" \
      org.opencontainers.image.description="An async HTTP load generator with coordinated-omission-free latencies and a performance-regression gate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.16-slim-bookworm" \
      org.opencontainers.image.base.digest="sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only from the builder's wheels: no index, no compiler, no wheel left behind
# (the bind mount is not a layer). pip byte-compiles what it installs, so a
# read-only root filesystem costs no start-up time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/loadgen-*.whl \
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
