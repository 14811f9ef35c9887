# syntax=docker/dockerfile:1
# Every Assent process (the services and the Site) from one file. The build context is the
# repository root; SERVICE and PORT come from deploy/services.toml (docker-compose.yml passes them):
#   docker build --build-arg SERVICE=identity --build-arg PORT=8101 -t assent-identity .

# ---- build: resolve the workspace lock and install assent-$SERVICE + assent-shared into /opt/venv
FROM python:3.11.14-slim-bookworm AS build

ARG SERVICE
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=<name> (deploy/services.toml)" >&2; exit 1; }

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

RUN pip install uv==0.13.9

WORKDIR /src

# The root workspace lists every member, so each member's pyproject.toml must be present
# (tests/deploy checks this list against the workspace).
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY devtools/pyproject.toml devtools/pyproject.toml
COPY services/identity/pyproject.toml services/identity/pyproject.toml
COPY services/consent/pyproject.toml services/consent/pyproject.toml
COPY services/mailer/pyproject.toml services/mailer/pyproject.toml
COPY services/policy/pyproject.toml services/policy/pyproject.toml
COPY services/telemetry/pyproject.toml services/telemetry/pyproject.toml
COPY services/site/pyproject.toml services/site/pyproject.toml
COPY services/support/pyproject.toml services/support/pyproject.toml

# Third-party dependencies first: this layer is reused while only our source changes.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package assent-${SERVICE}

# Then the workspace packages themselves, installed as wheels (not editable) so the
# runtime stage needs nothing but the venv.
COPY shared/src shared/src
COPY services/${SERVICE}/src services/${SERVICE}/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package assent-${SERVICE}

# ---- runtime: the venv only, no uv, no sources, no compilers, non-root
FROM python:3.11.14-slim-bookworm AS runtime

ARG SERVICE
ARG PORT
RUN test -n "$PORT" || { echo "build with --build-arg PORT=<port> (deploy/services.toml)" >&2; exit 1; }

LABEL org.opencontainers.image.title="assent-${SERVICE}" \
      org.opencontainers.image.description="Assent ${SERVICE}"

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ASSENT_SERVICE=${SERVICE} \
    ASSENT_HTTP_PORT=${PORT}

RUN groupadd --gid 10001 assent \
 && useradd --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/assent \
      --shell /usr/sbin/nologin assent

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /home/assent

EXPOSE ${PORT}

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ['ASSENT_HTTP_PORT'], timeout=4).status == 200 else 1)"]

# No access log, as in `make run`: it would write every client's IP address (telemetry must never keep one).
CMD ["sh", "-c", "exec uvicorn --factory \"assent_${ASSENT_SERVICE}.main:create_app\" --host 0.0.0.0 --port \"${ASSENT_HTTP_PORT}\" --no-access-log"]
