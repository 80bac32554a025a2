"""The working-day calendar: pinned facts, provisional years, the counting convention."""

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.deadlines import store as calendar
from app.deadlines.calendar import WorkCalendar, due_in_working_days, statutory_days
from app.deadlines.models import YearStatus


@pytest.fixture
async def work(session: AsyncSession) -> WorkCalendar:
    return await calendar.load(session)


def test_pinned_facts(work: WorkCalendar) -> None:
    assert work.is_working_day(date(2026, 2, 14))  # Saturday, 调休
    assert work.is_working_day(date(2026, 10, 10))  # Saturday, 调休
    for day in range(1, 8):
        assert not work.is_working_day(date(2026, 10, day))
    assert work.add_working_days(date(2026, 9, 30), 5) == (date(2026, 10, 13), False)
    assert work.add_working_days(date(2026, 2, 13), 1) == (date(2026, 2, 14), False)


def test_the_table_agrees_with_the_package_on_every_seeded_day(work: WorkCalendar) -> None:
    day = date(2004, 1, 1)
    while day <= date(2026, 12, 31):
        assert work.is_working_day(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


async def test_the_first_year_without_a_notice_is_provisional(
    session: AsyncSession, work: WorkCalendar
) -> None:
    year = await calendar.first_unofficial_year(session)
    assert year is not None  # found in the table, so this stays true when a year is entered
    assert work.years[year] is YearStatus.provisional
    assert work.provisional(date(year, 3, 2))
    _, provisional = work.add_working_days(date(year - 1, 12, 20), 15)
    assert provisional  # reaches into the provisional year: never silently final
    assert not work.add_working_days(date(year - 1, 3, 2), 5)[1]


def test_provisional_years_count_weekends_and_statutory_days_only(work: WorkCalendar) -> None:
    for day, _ in statutory_days(2027):
        assert not work.is_working_day(day)
    assert not work.is_working_day(date(2027, 2, 6))  # 春节 (lunar new year) 2027
    assert work.is_working_day(date(2027, 2, 10))  # a Wednesday after day 3: no 调休 block guessed
    assert len(statutory_days(2027)) == 13
    assert len(statutory_days(2028)) == 12  # 中秋 falls on 3 October: one day, both names
    assert dict(statutory_days(2028))[date(2028, 10, 3)] == "中秋节、国庆节"


def test_counting_convention(work: WorkCalendar) -> None:
    # Received Friday 2026-11-20 20:00 in Beijing (12:00 UTC): day of receipt not counted.
    due, provisional = due_in_working_days(datetime(2026, 11, 20, 12, tzinfo=UTC), 2, work)
    assert due == datetime(2026, 11, 24, 15, 59, 59, tzinfo=UTC)  # Tuesday 23:59:59 Beijing
    assert not provisional
    # Received on a rest day (Sunday 2026-10-04): counting starts with the next working day.
    assert work.add_working_days(date(2026, 10, 4), 1) == (date(2026, 10, 8), False)
    # 23:30 UTC on 24 November is already the 25th in Beijing.
    due, _ = due_in_working_days(datetime(2026, 11, 24, 23, 30, tzinfo=UTC), 1, work)
    assert due.astimezone(UTC).date() == date(2026, 11, 26)


async def test_seeding_again_changes_nothing(session: AsyncSession) -> None:
    assert await calendar.seed(session, through_year=2028) == []


async def test_entering_a_year_makes_it_official(session: AsyncSession) -> None:
    before = await calendar.load(session)
    row = await calendar.enter_year(
        session,
        2027,
        source="国办发明电〔2026〕某号（test）",
        days_off=[(date(2027, 2, 5), "春节"), (date(2027, 2, 6), "春节")],
        workdays=[(date(2027, 2, 13), "春节")],
    )
    assert (row.status, row.version) == (YearStatus.official, 2)
    after = await calendar.load(session)
    assert after.version != before.version
    assert after.is_working_day(date(2027, 2, 13))  # a Saturday, 调休
    assert not after.provisional(date(2027, 6, 1))


@pytest.mark.committing
async def test_a_rolled_back_year_is_never_served_from_the_cache(
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    # Issue 11, defect 7. Before: the rolled-back entry's days were cached under version n+1, and
    # the next entry that committed reused n+1 and was served the rolled-back days.
    async with committing_maker() as session:
        await calendar.enter_year(
            session,
            2027,
            source="通知（rolled back）",
            days_off=[(date(2027, 3, 3), "x")],
            workdays=[],
        )
        assert not (await calendar.load(session)).is_working_day(date(2027, 3, 3))
        await session.rollback()
    async with committing_maker.begin() as session:
        await calendar.enter_year(
            session,
            2027,
            source="通知（committed）",
            days_off=[(date(2027, 3, 4), "y")],
            workdays=[],
        )
    async with committing_maker() as session:
        loaded = await calendar.load(session)
    assert loaded.is_working_day(date(2027, 3, 3))
    assert not loaded.is_working_day(date(2027, 3, 4))
