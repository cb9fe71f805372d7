# syntax=docker/dockerfile:1
# The purifier service (FastAPI + uvicorn) on the bundled TorchScript artifacts, port 8000.
# One image for CPU and GPU: PyPI's torch wheels carry CUDA and run on the CPU where no GPU is visible.
# Build and run: docs/deploy.md. Python 3.11 and linux/amd64, as requirements/*.txt were locked for.
# Pin the base further by digest with --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...
# Behind a package mirror or a TLS-intercepting proxy: --build-arg PIP_INDEX_URL=https://mirror/simple and
# --secret id=pip-ca,src=corporate-ca.pem (BuildKit); both are used by the build stages only and reach no layer
# of the final image.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# build: a virtual environment from the hash-pinned lock of the `serve` extra, then the project itself.
FROM ${PYTHON_IMAGE} AS build
ARG PIP_INDEX_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements/serve.txt requirements/serve.txt
# The optional CA bundle is a secret mount: present while this command runs, in no layer.
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    pip install --require-hashes ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} -r requirements/serve.txt
COPY pyproject.toml README.md ./
COPY advattacks advattacks
COPY bounds bounds
COPY service service
# Every dependency came from the lock above; the build backend (setuptools) is pinned in it too, and is
# removed once the project is installed: the service does not need it.
RUN pip install --no-deps --no-build-isolation . && pip uninstall --yes setuptools

# build-loadtest: the same environment plus Locust, from the lock of the `serve` and `loadtest` extras.
FROM build AS build-loadtest
ARG PIP_INDEX_URL=""
COPY requirements/loadtest.txt requirements/loadtest.txt
RUN --mount=type=secret,id=pip-ca,required=false \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    pip install --require-hashes ${PIP_INDEX_URL:+--index-url "$PIP_INDEX_URL"} -r requirements/loadtest.txt

# base: what both images share: an unprivileged user, the artifacts and the environment.
FROM ${PYTHON_IMAGE} AS base
# The group is made first with its own id: `useradd --user-group` would pick a system gid (999), leaving
# USER 10001:10001 and Kubernetes' runAsGroup with a gid that /etc/group does not name.
RUN groupadd --system --gid 10001 purifier \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin purifier
WORKDIR /app
COPY artifacts artifacts
# The package is installed, not editable, so the artifacts' place is set explicitly; the service
# listens on every interface of the container. Every other PURIFIER_* setting: docs/deploy.md.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PURIFIER_ARTIFACTS_DIR=/app/artifacts \
    PURIFIER_HOST=0.0.0.0 \
    PURIFIER_PORT=8000

# loadtest: Locust running the repo's loadtest/locustfile.py (docker build --target loadtest; compose
# profile `loadtest`). Its arguments follow: --host, --users, ..., and the locustfile's --mix, --datasets.
FROM base AS loadtest
COPY --from=build-loadtest /opt/venv /opt/venv
COPY loadtest loadtest
# The locustfile imports loadtest.* from /app, and reads the samples from the image's artifacts.
ENV PYTHONPATH=/app
USER 10001:10001
ENTRYPOINT ["locust", "-f", "/app/loadtest/locustfile.py", "--artifacts", "/app/artifacts"]

# runtime, the default target: the service, run by the unprivileged user.
FROM base AS runtime
LABEL org.opencontainers.image.title="adversarial-purifier" \
      org.opencontainers.image.description="Adversarial purification with convolutional autoencoders: FastAPI inference service" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
# No curl in the slim image: the standard library fetches the URL, and fails on a refused or non-2xx answer.
# The port follows PURIFIER_PORT, so `-e PURIFIER_PORT=...` keeps the check right.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; urllib.request.urlopen(sys.argv[1].replace(':8000/', ':%s/' % os.environ.get('PURIFIER_PORT', '8000')), timeout=4)", "http://127.0.0.1:8000/healthz"]
CMD ["python", "-m", "service"]
