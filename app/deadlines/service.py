"""The calendar as governed data: seeded from a pinned package, corrected by an admin, loaded
into memory for counting. Requests never consult the package."""

import hashlib
from datetime import UTC, date, datetime
from typing import Any

import chinese_calendar
from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.deadlines.calendar import CHINA, END_OF_DAY, WorkCalendar, due_at, statutory_days
from app.deadlines.models import (
    CalendarDay,
    CalendarYear,
    DayKind,
    DeadlineExtension,
    DeadlinePause,
    DeadlineRule,
    ExtensionStatus,
    PauseReason,
    YearStatus,
)
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries.models import ENDED_STATUSES, EventAction, Inquiry, InquiryStatus
from app.inquiries.service import record
from app.problems import Conflict

PACKAGE = "chinesecalendar 1.11.0 (from the State Council's yearly notices)"
PROVISIONAL = (
    "provisional: weekends and the statutory days of 全国年节及纪念日放假办法 "
    "(国务院令第795号), no 调休; replace with the State Council notice when it is published"
)


def _package_years() -> dict[int, list[tuple[date, DayKind, str]]]:
    years: dict[int, list[tuple[date, DayKind, str]]] = {}
    for day, name in chinese_calendar.constants.holidays.items():
        years.setdefault(day.year, []).append((day, DayKind.day_off, str(name)))
    for day, name in chinese_calendar.constants.workdays.items():
        years.setdefault(day.year, []).append((day, DayKind.workday, str(name)))
    return years


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


async def seed(session: AsyncSession, *, through_year: int) -> list[int]:
    """Fill what is missing: official years from the package (replacing provisional ones), then
    provisional years up to `through_year`. Years someone entered are left alone."""
    known = {row.year: row.status for row in await session.scalars(select(CalendarYear))}
    written = []
    package = _package_years()
    for year, days in sorted(package.items()):
        if known.get(year) is not YearStatus.official:
            await _write_year(session, year, status=YearStatus.official, source=PACKAGE, days=days)
            written.append(year)
    for year in range(max(package) + 1, through_year + 1):
        if year not in known:
            days = [(d, DayKind.day_off, name) for d, name in statutory_days(year)]
            await _write_year(
                session, year, status=YearStatus.provisional, source=PROVISIONAL, days=days
            )
            written.append(year)
    return written


async def seed_database(url: str, *, through_year: int) -> list[int]:
    """The seed as a command: `make run` and the test suite run it after migrating."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine).begin() as session:
            written = await seed(session, through_year=through_year)
            await backfill(session)
            return written
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


class NoDeadlineRule(Conflict):
    title = "No deadline rule applies"
    slug = "no-deadline-rule"
    example_detail = "No active deadline rule for consultation in 340100."


async def rule_for(
    session: AsyncSession, *, purpose: str, region_code: str, channel: str | None
) -> DeadlineRule:
    """The active rule for a purpose: the most specific region prefix wins, then one for the
    channel over one for every channel."""
    candidates = await session.scalars(
        select(DeadlineRule).where(DeadlineRule.purpose == purpose, DeadlineRule.active)
    )
    fitting = [
        rule
        for rule in candidates
        if (rule.region_prefix is None or region_code.startswith(rule.region_prefix))
        and (rule.channel is None or rule.channel == channel)
    ]
    if not fitting:
        raise NoDeadlineRule(f"No active deadline rule for {purpose} in {region_code}.")
    return max(
        fitting,
        key=lambda r: (len(r.region_prefix or ""), r.channel is not None, not r.is_default, r.id),
    )


async def set_due(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    purpose: str,
    region_code: str,
    actor: str,
) -> None:
    """Give the inquiry its reply deadline from the rule that governs it, with provenance."""
    rule = await rule_for(
        session, purpose=purpose, region_code=region_code, channel=inquiry.channel.value
    )
    calendar = await load(session)
    due, provisional = due_at(inquiry.received_at, rule.unit, rule.length, calendar)
    inquiry.reply_due_at = due
    inquiry.deadline_rule_id = rule.id
    inquiry.deadline_unit = rule.unit.value
    inquiry.deadline_length = rule.length
    inquiry.calendar_version = calendar.version
    inquiry.due_provisional = provisional
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.deadline_set,
        reason=f"{purpose}: {rule.length} {rule.unit.value} ({rule.source})",
        details={
            "rule_id": rule.id,
            "purpose": purpose,
            "unit": rule.unit.value,
            "length": rule.length,
            "due_at": due.isoformat(),
            "provisional": provisional,
            "calendar_version": calendar.version,
        },
    )


async def _count_again(
    session: AsyncSession,
    inquiry: Inquiry,
    calendar: WorkCalendar,
    *,
    actor: str,
    reason: str,
    rule: DeadlineRule | None = None,
) -> None:
    """Count an inquiry's deadline again from receipt: its rule (or `rule`), then the working
    days its pauses and an approved extension added. Audited with old and new values."""
    unit = rule.unit.value if rule else inquiry.deadline_unit
    length = rule.length if rule else inquiry.deadline_length
    assert unit is not None
    assert length is not None
    due, provisional = due_at(inquiry.received_at, unit, length, calendar)
    pauses = await session.scalars(
        select(DeadlinePause).where(
            DeadlinePause.inquiry_id == inquiry.id, DeadlinePause.ended_at.is_not(None)
        )
    )
    extension = await session.scalar(
        select(DeadlineExtension.working_days).where(
            DeadlineExtension.inquiry_id == inquiry.id,
            DeadlineExtension.status == ExtensionStatus.approved,
        )
    )
    added = 0
    for pause in pauses:
        assert pause.ended_at is not None
        if unit == "hours":
            due += pause.ended_at - pause.started_at
            continue
        pause.working_days_added = calendar.working_days_between(
            pause.started_at.astimezone(CHINA).date(), pause.ended_at.astimezone(CHINA).date()
        )
        added += pause.working_days_added
    original = due
    if unit != "hours" and (added or extension):
        day = due.astimezone(CHINA).date()
        if added:  # pauses first, then the extension on top
            day, later = calendar.add_working_days(day, added)
            provisional = provisional or later
        original = datetime.combine(day, END_OF_DAY, CHINA).astimezone(UTC)
        if extension:
            day, later = calendar.add_working_days(day, extension)
            provisional = provisional or later
        due = datetime.combine(day, END_OF_DAY, CHINA).astimezone(UTC)
    old = (inquiry.reply_due_at, inquiry.due_provisional, inquiry.calendar_version)
    inquiry.reply_due_at, inquiry.due_provisional = due, provisional
    inquiry.calendar_version = calendar.version
    if extension:
        inquiry.original_due_at = original
    if rule is not None:
        inquiry.deadline_rule_id, inquiry.deadline_unit, inquiry.deadline_length = (
            rule.id,
            rule.unit.value,
            rule.length,
        )
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.deadline_recomputed,
        reason=reason,
        details={
            "old_due_at": old[0].isoformat() if old[0] else None,
            "new_due_at": due.isoformat(),
            "old_provisional": old[1],
            "new_provisional": provisional,
            "old_calendar_version": old[2],
            "new_calendar_version": calendar.version,
            "rule_id": inquiry.deadline_rule_id,
        },
    )


async def recompute_for_year(session: AsyncSession, year: int, *, actor: str) -> int:
    """After a year is entered or corrected: every open inquiry whose deadline was provisional,
    or whose period touches that year, is counted again. Ended inquiries keep their figures."""
    calendar = await load(session)
    inquiries = await session.scalars(
        select(Inquiry)
        .where(
            Inquiry.deadline_unit.is_not(None),
            Inquiry.status.not_in(ENDED_STATUSES),
            or_(
                Inquiry.due_provisional,
                and_(
                    func.extract("year", func.timezone("Asia/Shanghai", Inquiry.received_at))
                    <= year,
                    func.extract("year", func.timezone("Asia/Shanghai", Inquiry.reply_due_at))
                    >= year,
                ),
            ),
        )
        .with_for_update()
    )
    count = 0
    for inquiry in inquiries:
        await _count_again(
            session,
            inquiry,
            calendar,
            actor=actor,
            reason=f"the calendar for {year} changed: the deadline is counted again",
        )
        count += 1
    await session.flush()
    return count


async def region_of(session: AsyncSession, inquiry: Inquiry) -> str:
    """The division code deadlines are counted in: the account's owning department's."""
    region = await session.scalar(
        select(Department.region_code)
        .join(Account, Account.department_id == Department.id)
        .where(Account.id == inquiry.account_id)
    )
    assert region is not None  # foreign keys
    return region


async def recompute_for_kind(session: AsyncSession, inquiry: Inquiry, *, actor: str) -> None:
    """A corrected kind has its own period: counted again from receipt (audited)."""
    if inquiry.reply_due_at is None or inquiry.status in ENDED_STATUSES:
        return
    region_code = await region_of(session, inquiry)
    rule = await rule_for(
        session, purpose=inquiry.kind.value, region_code=region_code, channel=inquiry.channel.value
    )
    await _count_again(
        session,
        inquiry,
        await load(session),
        actor=actor,
        reason=f"the kind is now {inquiry.kind}: {rule.length} {rule.unit.value} ({rule.source})",
        rule=rule,
    )
    await session.flush()


async def backfill(session: AsyncSession, *, actor: str = "system:backfill") -> int:
    """Routed inquiries from before deadlines existed get theirs (run by `make run`)."""
    inquiries = await session.scalars(
        select(Inquiry).where(Inquiry.routed_at.is_not(None), Inquiry.reply_due_at.is_(None))
    )
    count = 0
    for inquiry in inquiries:
        purpose = "referral" if inquiry.status is InquiryStatus.referred else inquiry.kind.value
        region_code = await region_of(session, inquiry)
        await set_due(session, inquiry, purpose=purpose, region_code=region_code, actor=actor)
        count += 1
    return count


class PauseConflict(Conflict):
    title = "Pause not possible"
    slug = "pause-conflict"
    example_detail = "The clock is already stopped (awaiting_citizen since 2026-11-24)."


async def start_pause(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    reason: PauseReason,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> DeadlinePause:
    """Stop the clock for one of the enumerated reasons."""
    if inquiry.reply_due_at is None or inquiry.status in ENDED_STATUSES:
        raise PauseConflict(f"{inquiry.reference} has no running deadline to pause.")
    open_pause = await _open_pause(session, inquiry)
    if open_pause is not None:
        since = open_pause.started_at.astimezone(CHINA).date()
        raise PauseConflict(f"The clock is already stopped ({open_pause.reason} since {since}).")
    pause = DeadlinePause(
        inquiry_id=inquiry.id, reason=reason, note=note, started_at=now, started_by=actor
    )
    session.add(pause)
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.paused,
        reason=note or reason.value,
        person_id=person_id,
        details=details | {"pause_reason": reason.value},
    )
    await session.flush()
    return pause


async def _open_pause(session: AsyncSession, inquiry: Inquiry) -> DeadlinePause | None:
    return await session.scalar(
        select(DeadlinePause).where(
            DeadlinePause.inquiry_id == inquiry.id, DeadlinePause.ended_at.is_(None)
        )
    )


async def end_pause(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    now: datetime,
    actor: str,
    note: str = "",
    only_reason: PauseReason | None = None,
    person_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Restart the clock; the due date moves by the working days in (start, end]. Returns them,
    or None when no (matching) pause was open."""
    pause = await _open_pause(session, inquiry)
    if pause is None or (only_reason is not None and pause.reason is not only_reason):
        return None
    calendar = await load(session)
    now = max(now, pause.started_at)  # a message sent before the pause began ends it at once
    start = pause.started_at.astimezone(CHINA).date()
    end = now.astimezone(CHINA).date()
    added = calendar.working_days_between(start, end)
    pause.ended_at, pause.ended_by, pause.working_days_added = now, actor, added
    old_due = inquiry.reply_due_at
    if old_due is not None and inquiry.deadline_unit == "hours":
        # An hours deadline runs around the clock: the pause's own length is added back.
        inquiry.reply_due_at = old_due + (now - pause.started_at)
    elif added and old_due is not None:
        new_day, provisional = calendar.add_working_days(old_due.astimezone(CHINA).date(), added)
        inquiry.reply_due_at = datetime.combine(new_day, END_OF_DAY, CHINA).astimezone(UTC)
        inquiry.due_provisional = inquiry.due_provisional or provisional
        if inquiry.original_due_at is not None:  # the due time without the extension moves too
            base = inquiry.original_due_at.astimezone(CHINA).date()
            day = calendar.add_working_days(base, added)[0]
            inquiry.original_due_at = datetime.combine(day, END_OF_DAY, CHINA).astimezone(UTC)
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.resumed,
        reason=note or f"{pause.reason} ended",
        person_id=person_id,
        details=(details or {})
        | {
            "pause_reason": pause.reason.value,
            "working_days_added": added,
            "old_due_at": old_due.isoformat() if old_due else None,
            "new_due_at": inquiry.reply_due_at.isoformat() if inquiry.reply_due_at else None,
        },
    )
    await session.flush()
    return added


class ExtensionRefused(Conflict):
    title = "Extension not possible"
    slug = "extension-not-possible"
    example_detail = "An extension was asked for already; at most one per inquiry."


class NotYourOffice(Conflict):
    title = "Not the deciding office"
    slug = "not-the-deciding-office"
    example_detail = "hefei-office decides this extension."


async def request_extension(
    session: AsyncSession,
    inquiry: Inquiry,
    holder: Department,
    *,
    working_days: int,
    reason: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> DeadlineExtension:
    """Ask the supervising office for more time: before the due time, at most once, no longer
    than the original period (政府信息公开条例 art. 33 by analogy)."""
    if inquiry.status in ENDED_STATUSES or inquiry.reply_due_at is None:
        raise ExtensionRefused(f"{inquiry.reference} has no running deadline.")
    if now >= inquiry.reply_due_at:
        raise ExtensionRefused("An extension is asked for before the due time, not after.")
    if inquiry.deadline_unit == "hours":
        raise ExtensionRefused("An hours deadline (urgent first contact) is not extended.")
    if inquiry.deadline_length is not None and working_days > inquiry.deadline_length:
        raise ExtensionRefused(
            f"At most the original period: {inquiry.deadline_length} {inquiry.deadline_unit}."
        )
    if await session.scalar(
        select(DeadlineExtension.id).where(DeadlineExtension.inquiry_id == inquiry.id)
    ):
        raise ExtensionRefused("An extension was asked for already; at most one per inquiry.")
    offices = await departments.enclosing_offices(session, holder)
    if not offices:
        raise ExtensionRefused(f"No supervising office is registered above {holder.code}.")
    extension = DeadlineExtension(
        inquiry_id=inquiry.id,
        office_id=offices[0].id,
        working_days=working_days,
        reason=reason,
        requested_at=now,
        requested_by=actor,
        status=ExtensionStatus.requested,
    )
    session.add(extension)
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.extension_requested,
        reason=reason,
        person_id=person_id,
        details=details | {"working_days": working_days, "office": offices[0].code},
    )
    await session.flush()
    return extension


async def decide_extension(
    session: AsyncSession,
    inquiry: Inquiry,
    office: Department,
    *,
    approve: bool,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> DeadlineExtension:
    """The nearest supervising office approves or refuses; both due times are kept."""
    extension = await session.scalar(
        select(DeadlineExtension)
        .where(
            DeadlineExtension.inquiry_id == inquiry.id,
            DeadlineExtension.status == ExtensionStatus.requested,
        )
        .with_for_update()
    )
    if extension is None:
        raise ExtensionRefused(f"No extension of {inquiry.reference} awaits a decision.")
    if extension.office_id != office.id:
        raise NotYourOffice("Only the nearest supervising office of the holder decides.")
    extension.status = ExtensionStatus.approved if approve else ExtensionStatus.refused
    extension.decided_at, extension.decided_by, extension.decision_note = now, actor, note
    old_due = inquiry.reply_due_at
    if approve and old_due is not None:
        calendar = await load(session)
        day, provisional = calendar.add_working_days(
            old_due.astimezone(CHINA).date(), extension.working_days
        )
        inquiry.original_due_at = old_due
        inquiry.reply_due_at = datetime.combine(day, END_OF_DAY, CHINA).astimezone(UTC)
        inquiry.due_provisional = inquiry.due_provisional or provisional
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.extension_decided,
        reason=note,
        person_id=person_id,
        details=details
        | {
            "approved": approve,
            "original_due_at": old_due.isoformat() if old_due else None,
            "due_at": inquiry.reply_due_at.isoformat() if inquiry.reply_due_at else None,
        },
    )
    await session.flush()
    return extension
