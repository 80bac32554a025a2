"""The calendar's life cycle (README, Calendar life cycle): a migration freezes the official years,
the daily job and start-up keep provisional years to today + 2 (China time), and /readyz refuses a
calendar without this year or next.

Before: the official years were seeded only by `make run` and the worker's start, so `alembic
upgrade head` + uvicorn served deadlines on an empty calendar and /readyz said ready.
"""

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Any

import chinese_calendar
import pytest
from alembic import command
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app import db, embedded, serve
from app.deadlines import store, tasks
from app.deadlines.calendar import CHINA, WorkCalendar
from app.deadlines.models import CalendarDay, CalendarYear, DayKind, YearStatus
from app.settings import PROJECT_ROOT, settings
from app.worker import QUEUES
from app.worker import app as jobs
from tests.conftest import Clock, make_client

FROZEN = range(2004, 2027)  # the years chinesecalendar 1.11.0 has notices for


@pytest.fixture
def fresh_url(server_url: str) -> Iterator[str]:
    """An empty database of the test's own: no migrations, no calendar."""
    name = f"govinbox_life_{uuid.uuid4().hex[:12]}"
    url = embedded.create_database(server_url, name)
    yield url
    embedded.drop_database(server_url, name)


@pytest.fixture
async def fresh_maker(fresh_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(fresh_url, poolclass=NullPool)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def _years(maker: async_sessionmaker[AsyncSession]) -> dict[int, tuple[Any, ...]]:
    async with maker() as session:
        rows = await session.scalars(select(CalendarYear))
        return {r.year: (r.status, r.source, r.version, r.updated_at) for r in rows}


async def _days(maker: async_sessionmaker[AsyncSession]) -> dict[date, tuple[str, str]]:
    async with maker() as session:
        rows = await session.scalars(select(CalendarDay).where(CalendarDay.year.in_(FROZEN)))
        return {r.day: (r.kind.value, r.name) for r in rows}


async def _load(maker: async_sessionmaker[AsyncSession]) -> WorkCalendar:
    async with maker() as session:
        return await store.load(session)


def _package_days() -> dict[date, tuple[str, str]]:
    """The independent check: the pinned package's own tables."""
    days = {d: ("day_off", str(n)) for d, n in chinese_calendar.constants.holidays.items()}
    days |= {d: ("workday", str(n)) for d, n in chinese_calendar.constants.workdays.items()}
    return days


# --- the migration ---------------------------------------------------------------------------


async def test_upgrade_head_alone_gives_the_official_years_of_the_package(
    fresh_url: str, fresh_maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _package_days()
    # The migration carries its data: whatever package is installed, the result is the same.
    monkeypatch.setattr(chinese_calendar.constants, "holidays", {})
    monkeypatch.setattr(chinese_calendar.constants, "workdays", {})
    await asyncio.to_thread(db.migrate, fresh_url)
    monkeypatch.undo()
    years = await _years(fresh_maker)
    assert sorted(years) == list(FROZEN)  # and nothing that depends on today's date
    assert {status for status, *_ in years.values()} == {YearStatus.official}
    assert all("chinesecalendar 1.11.0" in source for _, source, *_ in years.values())
    assert await _days(fresh_maker) == package == _package_days()
    # …so the working days agree with the package on every day it knows.
    calendar = await _load(fresh_maker)
    day = date(2004, 1, 1)
    while day <= date(2026, 12, 31):
        assert calendar.is_working_day(day) == chinese_calendar.is_workday(day), day
        day = date.fromordinal(day.toordinal() + 1)


async def test_the_migration_replaces_provisional_years_and_keeps_entered_ones(
    fresh_url: str, fresh_maker: async_sessionmaker[AsyncSession]
) -> None:
    await asyncio.to_thread(db.migrate, fresh_url, "0013")
    async with fresh_maker.begin() as session:
        await store.enter_year(
            session, 2026, source="国办发明电〔2025〕7号（entered）", days_off=[], workdays=[]
        )
        await store.seed(session, through_year=2027)  # 2027 provisional
        session.add(CalendarYear(year=2025, status=YearStatus.provisional, source="guess"))
        await session.flush()
        session.add(
            CalendarDay(day=date(2025, 3, 3), year=2025, kind=DayKind.day_off, name="wrong")
        )
    await asyncio.to_thread(db.migrate, fresh_url)
    years = await _years(fresh_maker)
    assert years[2025][:3] == (YearStatus.official, years[2004][1], 2)  # replaced, version bumped
    assert years[2026][:2] == (YearStatus.official, "国办发明电〔2025〕7号（entered）")
    assert years[2027][0] is YearStatus.provisional  # after the package: not the migration's
    days = await _days(fresh_maker)
    assert date(2025, 3, 3) not in days
    assert days[date(2025, 1, 26)] == ("workday", "Spring Festival")
    assert not [d for d in days if d.year == 2026]  # the entered notice's days, untouched

    # Down: only the years it wrote and nobody entered since; up again restores them.
    await asyncio.to_thread(command.downgrade, db.alembic_config(fresh_url), "0013")
    years = await _years(fresh_maker)
    assert sorted(years) == [2026, 2027]
    await asyncio.to_thread(db.migrate, fresh_url)
    assert sorted(await _years(fresh_maker)) == [*FROZEN, 2027]


# --- the daily job ---------------------------------------------------------------------------


def test_keep_calendar_runs_daily_just_after_midnight_in_china_under_a_queueing_lock() -> None:
    periodic = jobs.periodic_registry.periodic_tasks.values()
    [keep] = [p for p in periodic if p.task.name == "keep_calendar"]
    assert keep.cron == "5 16 * * *"  # 16:05 UTC is 00:05 in Asia/Shanghai
    assert keep.task.queueing_lock == "keep_calendar"
    assert keep.task.queue in QUEUES


def _at(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


@pytest.mark.committing
async def test_keep_calendar_writes_provisional_years_to_today_plus_two_in_china(
    committing_maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    async with committing_maker.begin() as session:
        # An admin entered 2030 early; 2029 and 2031 are missing.
        await store.enter_year(session, 2030, source="通知（test）", days_off=[], workdays=[])
    before = await _years(committing_maker)
    assert max(before) == 2030
    official = {y: row for y, row in before.items() if row[0] is YearStatus.official}

    await tasks.keep_calendar(_at(2028, 12, 31, 15, 59))  # 23:59 on 31 December in Beijing
    after = await _years(committing_maker)
    assert sorted(set(after) - set(before)) == [2029]  # 2028 + 2: nothing further yet

    await tasks.keep_calendar(_at(2028, 12, 31, 16, 5))  # 00:05 on 1 January 2029 in Beijing
    after = await _years(committing_maker)
    assert sorted(set(after) - set(before)) == [2029, 2031]
    assert after[2031][0] is YearStatus.provisional
    assert {y: row for y, row in after.items() if y in official} == official  # untouched
    async with committing_maker() as session:
        assert await store.first_unofficial_year(session) == 2027

    await tasks.keep_calendar(_at(2028, 12, 31, 16, 5))
    assert await _years(committing_maker) == after  # idempotent: no version bumped


@pytest.mark.committing
async def test_concurrent_keepers_write_each_year_once(
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    # The worker replicas' start-up and the job may run together: one waits for the other.
    async def keep() -> list[int]:
        async with committing_maker.begin() as session:
            return await store.seed(session, through_year=2032)

    written = await asyncio.gather(keep(), keep(), keep())
    assert sorted(y for w in written for y in w) == [2029, 2030, 2031, 2032]


# --- start-up --------------------------------------------------------------------------------


async def test_make_runs_start_migrates_and_keeps_the_provisional_years(
    fresh_url: str,
    fresh_maker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_url)
    settings.cache_clear()
    try:
        assert settings().database_url == fresh_url  # never the suite's own server database
        await asyncio.to_thread(serve.prepare_database)
    finally:
        monkeypatch.undo()  # prepare_database sets DATABASE_URL itself
        settings.cache_clear()
    this_year = datetime.now(CHINA).year
    years = await _years(fresh_maker)
    assert sorted(years) == [*FROZEN, *range(2027, this_year + 3)]


async def test_the_worker_keeps_the_provisional_years_when_it_starts(
    fresh_url: str, fresh_maker: async_sessionmaker[AsyncSession]
) -> None:
    await asyncio.to_thread(db.migrate, fresh_url)  # the release step
    env = {**os.environ, "DATABASE_URL": fresh_url, "ALLOW_EMBEDDED_DATABASE": "false"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.worker",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    target = datetime.now(CHINA).year + 2
    try:
        for _ in range(300):
            if target in await _years(fresh_maker):
                break
            assert worker.returncode is None, "the worker ended"
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the worker wrote no provisional years within 30 s")
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), timeout=30)
    assert sorted(await _years(fresh_maker)) == [*FROZEN, *range(2027, target + 1)], stderr


# --- readiness -------------------------------------------------------------------------------


async def _committed(maker: async_sessionmaker[AsyncSession], statement: Any) -> None:
    async with maker.begin() as session:
        await session.execute(statement)


@pytest.mark.committing
async def test_readyz_fails_without_a_row_for_this_year_or_next(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # The template's calendar ends with 2028 (provisional).
    async with make_client(committing_maker, clock) as client:
        clock.now = datetime(2027, 6, 1, tzinfo=UTC)
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["calendar"] == "ok"
        assert "warnings" not in ready.json()

        clock.now = datetime(2028, 6, 1, tzinfo=UTC)  # 2029 has no row
        unready = await client.get("/readyz")
        assert unready.status_code == 503
        body = unready.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["migrations"] == "ok"
        assert body["checks"]["calendar"].startswith("no calendar for 2029:")

        await _committed(committing_maker, delete(CalendarYear).where(CalendarYear.year >= 2026))
        clock.now = datetime(2026, 3, 1, tzinfo=UTC)
        unready = await client.get("/readyz")
        assert unready.status_code == 503
        assert unready.json()["checks"]["calendar"].startswith("no calendar for 2026, 2027:")


@pytest.mark.committing
async def test_readyz_stays_ready_with_its_warning_when_next_year_is_provisional(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    clock.now = datetime(2027, 11, 2, tzinfo=UTC)  # 2028 is provisional in the template
    async with make_client(committing_maker, clock) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["calendar"] == "ok"
    assert "2028 holiday notice is not entered" in response.json()["warnings"][0]


async def test_the_production_path_is_ready_once_the_worker_kept_the_calendar(
    fresh_url: str, fresh_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # `alembic upgrade head` + uvicorn: this year is there (official), next year not yet.
    await asyncio.to_thread(db.migrate, fresh_url)
    async with make_client(fresh_maker, clock) as client:
        response = await client.get("/readyz")  # 2026-11-24
        assert response.status_code == 503
        assert response.json()["checks"]["calendar"].startswith("no calendar for 2027:")
        assert await store.seed_provisional(fresh_url, now=clock.now) == [2027, 2028]
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert "2027 holiday notice is not entered" in response.json()["warnings"][0]
