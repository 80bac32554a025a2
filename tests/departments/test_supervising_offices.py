"""The supervising office of a department is the nearest enclosing office that exists."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments import service
from tests import factories


async def offices(session: AsyncSession, code: str) -> list[str]:
    department = await service.get(session, code=code)
    return [office.code for office in await service.enclosing_offices(session, department)]


@pytest.fixture
async def anhui(session: AsyncSession) -> None:
    """Province 34, city 3401 (Hefei), county 340104 (Shushan district)."""
    await factories.department(
        session, "ah-office", level="province", region_code="340000", is_supervising_office=True
    )
    await factories.department(session, "ah-hrss", level="province", region_code="340000")
    await factories.department(
        session, "hf-office", level="city", region_code="340100", is_supervising_office=True
    )
    await factories.department(session, "hf-hrss", level="city", region_code="340100")
    await factories.department(
        session, "ss-office", level="county", region_code="340104", is_supervising_office=True
    )
    await factories.department(session, "ss-hrss", level="county", region_code="340104")
    # A neighbouring city and province, which must never appear.
    await factories.department(
        session, "wh-office", level="city", region_code="340200", is_supervising_office=True
    )
    await factories.department(
        session, "js-office", level="province", region_code="320000", is_supervising_office=True
    )


@pytest.mark.usefixtures("anhui")
async def test_province_city_and_county(session: AsyncSession) -> None:
    assert await offices(session, "ah-hrss") == ["ah-office"]
    assert await offices(session, "ah-office") == []
    assert await offices(session, "hf-hrss") == ["hf-office", "ah-office"]
    assert await offices(session, "hf-office") == ["ah-office"]
    assert await offices(session, "ss-hrss") == ["ss-office", "hf-office", "ah-office"]
    assert await offices(session, "ss-office") == ["hf-office", "ah-office"]


@pytest.mark.usefixtures("anhui")
async def test_missing_level_is_skipped(session: AsyncSession) -> None:
    await factories.department(
        session, "yh-hrss", level="county", region_code="340111"
    )  # no county office
    assert await offices(session, "yh-hrss") == ["hf-office", "ah-office"]


@pytest.mark.usefixtures("anhui")
async def test_inactive_office_is_skipped(session: AsyncSession) -> None:
    office = await service.get(session, code="hf-office")
    office.active = False
    await session.flush()
    assert await offices(session, "hf-hrss") == ["ah-office"]


async def test_municipality_district(session: AsyncSession) -> None:
    """Beijing 110000 is province-level; its districts 1101xx have no city office between."""
    await factories.department(
        session, "bj-office", level="province", region_code="110000", is_supervising_office=True
    )
    await factories.department(session, "bj-hrss", level="province", region_code="110000")
    await factories.department(
        session, "cy-office", level="county", region_code="110105", is_supervising_office=True
    )
    await factories.department(session, "cy-hrss", level="county", region_code="110105")
    await factories.department(session, "hd-hrss", level="county", region_code="110108")
    assert await offices(session, "bj-hrss") == ["bj-office"]
    assert await offices(session, "cy-hrss") == ["cy-office", "bj-office"]
    assert await offices(session, "cy-office") == ["bj-office"]
    assert await offices(session, "hd-hrss") == ["bj-office"]


async def test_province_administered_county(session: AsyncSession) -> None:
    """Jiyuan 419001 is a county-level city directly under Henan 410000: no city office."""
    await factories.department(
        session, "ha-office", level="province", region_code="410000", is_supervising_office=True
    )
    await factories.department(
        session, "zz-office", level="city", region_code="410100", is_supervising_office=True
    )
    await factories.department(
        session, "jy-office", level="county", region_code="419001", is_supervising_office=True
    )
    await factories.department(session, "jy-hrss", level="county", region_code="419001")
    assert await offices(session, "jy-hrss") == ["jy-office", "ha-office"]
    assert await offices(session, "jy-office") == ["ha-office"]


@pytest.mark.usefixtures("anhui")
async def test_supervising_offices_route(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/api/v1/admin/departments/ss-hrss/supervising-offices")
    assert response.status_code == 200
    body = response.json()
    assert body["nearest"]["code"] == "ss-office"
    assert [o["code"] for o in body["enclosing"]] == ["ss-office", "hf-office", "ah-office"]
    top = (await admin.get("/api/v1/admin/departments/ah-office/supervising-offices")).json()
    assert top == {"nearest": None, "enclosing": []}
