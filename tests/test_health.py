import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import db
from app.main import create_app


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_database_is_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_readyz_when_migrations_lag(client: httpx.AsyncClient, session: AsyncSession) -> None:
    await session.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    await session.flush()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert "code expects" in response.json()["checks"]["migrations"]


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    body = (await client.get("/metrics")).text
    assert 'govinbox_http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert "govinbox_http_request_duration_seconds_bucket" in body


async def test_readyz_without_a_database_is_503() -> None:
    def unconfigured() -> None:
        raise db.DatabaseNotConfigured("DATABASE_URL is not set")

    app = create_app()
    app.dependency_overrides[db.maker] = unconfigured
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "DATABASE_URL is not set"
