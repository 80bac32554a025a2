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
# The same entry point as `make run`: it migrates (failing fast on a lock), then serves the API
# with the job worker beside it. DATABASE_URL and ADMIN_TOKEN are required; it refuses to start
# without them. To scale apart: `python -m uvicorn app.main:create_app --factory` for the API and
# `python -m app.worker` for jobs, after `alembic upgrade head`.
CMD ["python", "-m", "app.serve"]
