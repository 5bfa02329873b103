# parkstream's one image: the chart runs `parkstream gateway|worker|sandbox` from it
# (docs/deploying.md, "Building the image"). Build it with `make image`.
#
# BASE_IMAGE: any Debian-like image whose `python3` is 3.11 with its venv module (the official
# python:3.11-slim-bookworm, or `make image-base`'s Debian bookworm). Both stages use it, so
# the venv's link to its interpreter is as valid in the final stage as where it was made.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build: wheels of parkstream and of every dependency, installed into /opt/parkstream ----
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/parkstream
WORKDIR /src
# .dockerignore lets in only what the wheel is built from.
COPY . .
# Behind a TLS-intercepting proxy, `make image` hands pip the proxy's CA bundle (PIP_CERT) as
# a build secret: used by this step only, never stored in a layer.
# The root filesystem is read-only at run time, so the bytecode is compiled here, once, and
# never checked against the sources (in an image they never change).
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
 && /opt/parkstream/bin/pip wheel --no-cache-dir --quiet --wheel-dir /wheels . \
 && /opt/parkstream/bin/pip install --no-cache-dir --quiet --no-index --no-compile /wheels/*.whl \
 && /opt/parkstream/bin/pip uninstall --quiet --yes pip setuptools \
 && /opt/parkstream/bin/python -m compileall -q --invalidation-mode unchecked-hash \
      /opt/parkstream/lib

# ---- final: the same base and the venv; no compilers, no wheels, no pip, no caches ----
FROM ${BASE_IMAGE}
# RocksDB (the worker's tables, rocksdict) needs the C++ runtime; a slim base may lack it.
# hadolint ignore=DL3008
RUN if ! python3 -c "import ctypes; ctypes.CDLL('libstdc++.so.6')" 2>/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends libstdc++6 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# The chart runs every container as uid/gid 10001 on a read-only root filesystem, writing
# only to /tmp (an emptyDir in every pod) and the worker's PARKSTREAM_DATA_DIR (its volume
# claim): HOME is /tmp, and the data dir exists, owned by 10001, for runs without the chart.
RUN groupadd --gid 10001 parkstream \
 && useradd --uid 10001 --gid 10001 --no-log-init --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin parkstream \
 && mkdir -p /var/lib/parkstream \
 && chown 10001:10001 /var/lib/parkstream
COPY --from=build /opt/parkstream /opt/parkstream
ENV PATH=/opt/parkstream/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PARKSTREAM_DATA_DIR=/var/lib/parkstream
WORKDIR /var/lib/parkstream
# Numeric, so the kubelet can check runAsNonRoot against it.
USER 10001:10001
# gateway, worker web port (/healthz, /metrics, /stats), sandbox
EXPOSE 8080 6066 8081
ENTRYPOINT ["parkstream"]
CMD ["--help"]
