# syntax=docker/dockerfile:1
# Dispatch: build wheels in one stage, run as an unprivileged user in the next.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md app.yml ./
COPY app ./app
COPY migrations ./migrations
COPY workflows ./workflows
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim AS runtime
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin dispatch
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
WORKDIR /home/dispatch
# With no DATABASE_URL the embedded PostgreSQL lives here; mount a volume to keep it.
ENV DISPATCH_DATA_DIR=/home/dispatch/data \
    PYTHONUNBUFFERED=1
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status != 200)"]
CMD ["dispatch", "serve", "--host", "0.0.0.0", "--port", "3000"]
