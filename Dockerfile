# One image for every Python process: api (default), streams worker, sink, migrate.
# Kafka and ClickHouse run from their own official images (see docker-compose.yml).

# The pages serve their chart library themselves (no CDN): take it from the npm registry,
# pinned by package-lock.json, exactly as `make install` does.
FROM node:20-slim AS vendor
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# README.m[d]: copied when present (pyproject names it as the readme), skipped otherwise.
COPY pyproject.toml README.m[d] ./
COPY services/ services/
COPY streams/ streams/
COPY api/ api/
COPY infra/ infra/
COPY --from=vendor /build/node_modules/echarts/dist/echarts.min.js api/pages/static/vendor/

# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed.
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

RUN useradd --system --create-home --uid 10001 app \
    && mkdir -p /data \
    && chown app /data

USER app
ENV DATA_DIR=/data

EXPOSE 8000
CMD ["python", "-m", "api"]
