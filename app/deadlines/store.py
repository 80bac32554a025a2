"""The calendar as governed data: official years frozen by a migration, provisional years kept
ahead by a daily job, corrected by an admin, loaded into memory for counting. Requests never
consult the package.

Life cycle (README, Calendar life cycle): migration 0014 writes the official years of the pinned
package (2004–2026); `seed` writes provisional years for those after, up to today + 2 years (the
daily `keep_calendar` job, and the worker and `make run` at start); an admin enters a year's
State Council notice through PUT /api/v1/admin/calendar/{year}, which makes it official.
"""

import hashlib
from datetime import date, datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.deadlines.calendar import CHINA, WorkCalendar, statutory_days
from app.deadlines.models import CalendarDay, CalendarYear, DayKind, YearStatus

# The first year after those migration 0014 froze as official: provisional years start here.
FIRST_PROVISIONAL_YEAR = 2027
# How far ahead provisional years are kept: a deadline counted now never runs off the table.
YEARS_AHEAD = 2
PROVISIONAL = (
    "provisional: weekends and the statutory days of 全国年节及纪念日放假办法 "
    "(国务院令第795号), no 调休; replace with the State Council notice when it is published"
)


# Writers of calendar years (the job, the worker and `make run` at start, an admin's entry) take
# this transaction lock first: two of them at once would both find a year missing, and the second
# insert would fail on the primary key (a worker replica would crash at start).
_WRITERS_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(
    key=int.from_bytes(b"calendar", "big")
)


async def _write_year(
    session: AsyncSession,
    year: int,
    *,
    status: YearStatus,
    source: str,
    days: list[tuple[date, DayKind, str]],
) -> None:
    row = await session.get(CalendarYear, year)
    if row is None:
        session.add(CalendarYear(year=year, status=status, source=source, version=1))
    else:
        row.status, row.source, row.version = status, source, row.version + 1
    await session.flush()
    await session.execute(delete(CalendarDay).where(CalendarDay.year == year))
    session.add_all(CalendarDay(day=d, year=year, kind=kind, name=name) for d, kind, name in days)
    await session.flush()


def through_year(now: datetime) -> int:
    """The last year provisional years are kept to: today's (China time) + 2."""
    return now.astimezone(CHINA).year + YEARS_AHEAD


async def seed(session: AsyncSession, *, through_year: int) -> list[int]:
    """Provisional years for those without a row, up to `through_year`; idempotent. A year that
    has a row, provisional or official, is left alone (the official ones come from migration
    0014 and the admin's notices)."""
    await session.execute(_WRITERS_LOCK)
    known = set(await session.scalars(select(CalendarYear.year)))
    written = []
    for year in range(FIRST_PROVISIONAL_YEAR, through_year + 1):
        if year not in known:
            days = [(d, DayKind.day_off, name) for d, name in statutory_days(year)]
            await _write_year(
                session, year, status=YearStatus.provisional, source=PROVISIONAL, days=days
            )
            written.append(year)
    return written


async def seed_provisional(url: str, *, now: datetime) -> list[int]:
    """`seed` as a start-up step, for `make run` and the worker: provisional years up to
    today + 2, so a fresh deployment is ready before the daily job first runs."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine).begin() as session:
            return await seed(session, through_year=through_year(now))
    finally:
        await engine.dispose()


async def enter_year(
    session: AsyncSession,
    year: int,
    *,
    source: str,
    days_off: list[tuple[date, str]],
    workdays: list[tuple[date, str]],
) -> CalendarYear:
    """Enter or correct a year from its notice: it becomes official."""
    await session.execute(_WRITERS_LOCK)
    days = [(d, DayKind.day_off, n) for d, n in days_off] + [
        (d, DayKind.workday, n) for d, n in workdays
    ]
    await _write_year(session, year, status=YearStatus.official, source=source, days=days)
    row = await session.get(CalendarYear, year)
    assert row is not None
    return row


_cache: dict[str, WorkCalendar] = {}


# The calendar's identity: each year's status and version, and the transaction that last wrote it
# (xmin: never reused, unlike a version number that a rolled-back entry had already taken); and
# whether this very transaction wrote it (then it is not committed, and must not be cached).
_STAMP = text(
    "SELECT string_agg(year || ':' || status || ':' || version || ':' || xmin, ','"
    "                  ORDER BY year),"
    " coalesce(bool_or(xmin = pg_current_xact_id_if_assigned()::xid), false)"
    " FROM calendar_year"
)


async def load(session: AsyncSession) -> WorkCalendar:
    """The calendar in memory; rebuilt only when a year has changed since the last load, and
    cached only from committed data."""
    stamp, uncommitted = (await session.execute(_STAMP)).one()
    version = hashlib.sha256((stamp or "").encode()).hexdigest()[:12]
    if uncommitted:
        return await _build(session, version)
    if version not in _cache:
        calendar = await _build(session, version)
        _cache.clear()
        _cache[version] = calendar
    return _cache[version]


async def _build(session: AsyncSession, version: str) -> WorkCalendar:
    years = {row.year: row.status for row in await session.scalars(select(CalendarYear))}
    days = [(row.day, row.kind) for row in await session.scalars(select(CalendarDay))]
    return WorkCalendar.build(years, days, version)


async def first_unofficial_year(session: AsyncSession) -> int | None:
    """The first year in the table without an official notice."""
    return await session.scalar(
        select(func.min(CalendarYear.year)).where(CalendarYear.status != YearStatus.official)
    )
