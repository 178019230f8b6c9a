# One image for every aftersales process: `aftersales api` by default; docker-compose.yml runs
# `aftersales worker` and `aftersales temporal-setup` from the same image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package is built from (pyproject's packages), so a local .venv, caches and
# state directories never end up in the image.
COPY pyproject.toml README.md ./
COPY config ./config
COPY aftersales ./aftersales
COPY domain ./domain
COPY workflows ./workflows
COPY activities ./activities
COPY notifications ./notifications
COPY store ./store
COPY api ./api

RUN pip install . \
    && useradd --system --create-home --home-dir /home/aftersales aftersales

# Processes are stateless (DESIGN 2): state lives in PostgreSQL and Temporal, so no volume here.
USER aftersales
EXPOSE 8000

CMD ["aftersales", "api"]
