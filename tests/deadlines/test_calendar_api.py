"""The calendar through the admin API, and the readiness warning from 1 November."""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.conftest import ADMIN_TOKEN, Clock, make_client


async def test_years_are_listed_with_their_source(admin: httpx.AsyncClient) -> None:
    years = (await admin.get("/api/v1/admin/calendar")).json()
    by_year = {y["year"]: y for y in years}
    assert by_year[2026]["status"] == "official"
    assert by_year[2027]["status"] == "provisional"
    assert "全国年节及纪念日放假办法" in by_year[2027]["source"]
    days = (await admin.get("/api/v1/admin/calendar/2026")).json()["days"]
    assert {"day": "2026-10-10", "kind": "workday", "name": "National Day"} in days
    assert (await admin.get("/api/v1/admin/calendar/1999")).status_code == 404


@pytest.fixture
async def committing_admin(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """Readiness reads on a connection of its own, so what it reads must be committed."""
    async with make_client(committing_maker, clock) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


@pytest.mark.committing
async def test_readiness_warns_from_november_while_next_year_is_provisional(
    committing_admin: httpx.AsyncClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    admin = committing_admin
    caplog.set_level(logging.WARNING)
    response = await admin.get("/readyz")  # the clock says 2026-11-24
    assert response.status_code == 200
    assert "2027 holiday notice is not entered" in response.json()["warnings"][0]
    assert any(r.getMessage() == "calendar incomplete" for r in caplog.records)
    assert "govinbox_calendar_next_year_missing 1.0" in (await admin.get("/metrics")).text
    clock.now = datetime(2026, 6, 1, tzinfo=UTC)
    assert "warnings" not in (await admin.get("/readyz")).json()
    clock.now = datetime(2026, 11, 24, 2, tzinfo=UTC)
    entered = await admin.put(
        "/api/v1/admin/calendar/2027",
        json={
            "source": "国务院办公厅关于2027年部分节假日安排的通知（test）",
            "days_off": [{"day": "2027-01-01", "name": "元旦"}],
            "workdays": [{"day": "2027-02-13", "name": "春节"}],
        },
    )
    assert entered.status_code == 200
    assert entered.json()["status"] == "official"
    assert "warnings" not in (await admin.get("/readyz")).json()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"source": "通知（test）", "days_off": [{"day": "2028-01-01"}]}, "not in 2027"),
        (
            {"source": "通知（test）", "days_off": [], "workdays": [{"day": "2027-02-10"}]},
            "Saturday or Sunday",
        ),
        (
            {
                "source": "通知（test）",
                "days_off": [{"day": "2027-02-13"}],
                "workdays": [{"day": "2027-02-13"}],
            },
            "both off and working",
        ),
    ],
)
async def test_a_wrong_year_entry_is_refused(
    admin: httpx.AsyncClient, body: dict[str, object], says: str
) -> None:
    response = await admin.put("/api/v1/admin/calendar/2027", json=body)
    assert response.status_code == 422
    assert says in response.text
