# Production image: configured only by environment (DATABASE_URL and ADMIN_TOKEN are required).
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml ./
COPY app ./app
RUN pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 govinbox
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/govinbox
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HOST=0.0.0.0 PORT=8000 \
    ALLOW_EMBEDDED_DATABASE=false
USER govinbox
EXPOSE 8000
# Liveness only: the process answers /healthz. Never /readyz here: during a database outage every
# replica is unready, and restarting them all would stop the very service that rides it out
# (README, Production). Job-worker containers (`python -m app.worker`) serve no HTTP: run them
# with --no-healthcheck and a restart policy.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)" || exit 1
# The same entry point as `make run`: it migrates (failing fast on a table lock; under an advisory
# lock, so replicas starting together migrate once), keeps the provisional calendar years, then
# serves the API with the job worker beside it. DATABASE_URL and ADMIN_TOKEN are required; it
# refuses to start without them (one line naming the setting, exit code 2). To scale apart:
# `alembic upgrade head` once per release (it brings the official calendar years),
# `python -m uvicorn app.main:create_app --factory` for the API and `python -m app.worker` for
# jobs (it keeps the provisional years; README, Production and Calendar life cycle).
CMD ["python", "-m", "app.serve"]
