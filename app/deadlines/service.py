"""An inquiry's due times, applied: its facts read under the row lock, the clock run, the
result written and audited. Every change that can move a due time ends here."""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines import clock, store
from app.deadlines.calendar import WorkCalendar, due_at
from app.deadlines.models import (
    CalendarRecount,
    DeadlineExtension,
    DeadlinePause,
    DeadlineRule,
    ExtensionStatus,
    PauseStatus,
    RecountStatus,
)
from app.deadlines.rules import NoDeadlineRule, region_of, rule_for
from app.inquiries.models import ENDED_STATUSES, EventAction, Inquiry, InquiryStatus
from app.inquiries.service import record


async def _stops(session: AsyncSession, inquiry: Inquiry) -> list[DeadlinePause]:
    """The pauses that stopped the clock (running or ended), in the order they started."""
    return list(
        await session.scalars(
            select(DeadlinePause)
            .where(
                DeadlinePause.inquiry_id == inquiry.id,
                DeadlinePause.status.in_([PauseStatus.running, PauseStatus.ended]),
                DeadlinePause.started_at.is_not(None),
            )
            .order_by(DeadlinePause.started_at, DeadlinePause.id)
        )
    )


async def facts(
    session: AsyncSession, inquiry: Inquiry, stops: list[DeadlinePause]
) -> clock.Facts | None:
    """What the clock counts from; None before routing gave the inquiry a rule."""
    if inquiry.deadline_unit is None or inquiry.deadline_length is None:
        return None
    extension = await session.scalar(
        select(DeadlineExtension.working_days).where(
            DeadlineExtension.inquiry_id == inquiry.id,
            DeadlineExtension.status == ExtensionStatus.approved,
        )
    )
    first, since = None, None
    if inquiry.first_response_unit is not None and inquiry.first_response_length is not None:
        first = clock.Period(inquiry.first_response_unit, inquiry.first_response_length)
        rule = await session.get(DeadlineRule, inquiry.first_response_rule_id)
        # The urgent rule counts from when the words arrived; acknowledge from receipt.
        since = inquiry.urgent_at if rule is not None and rule.purpose == "urgent" else None
    return clock.Facts(
        received_at=inquiry.received_at,
        reply=clock.Period(inquiry.deadline_unit, inquiry.deadline_length),
        first_response=first,
        first_response_from=since,
        stops=[clock.Stop(p.started_at, p.ended_at) for p in stops if p.started_at is not None],
        extension_days=extension or 0,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def recount(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    actor: str,
    reason: str,
    action: EventAction = EventAction.deadline_recomputed,
    calendar: WorkCalendar | None = None,
    person_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Run the clock on the inquiry's facts and store the due times; audited with old and new
    values. The caller holds the inquiry's row lock."""
    stops = await _stops(session, inquiry)
    known = await facts(session, inquiry, stops)
    if known is None:
        return
    calendar = calendar or await store.load(session)
    dues = clock.dues(known, calendar)
    for pause, credit in zip(stops, dues.credits, strict=True):
        pause.working_days_added = credit if pause.ended_at is not None else None
    old = {
        "first_response_due_at": _iso(inquiry.first_response_due_at),
        "reply_due_at": _iso(inquiry.reply_due_at),
        "original_due_at": _iso(inquiry.original_due_at),
        "provisional": inquiry.due_provisional,
        "calendar_version": inquiry.calendar_version,
    }
    inquiry.first_response_due_at = dues.first_response_due_at
    inquiry.first_response_from = known.first_response_from or (
        known.received_at if known.first_response else None
    )
    inquiry.reply_due_at = dues.reply_due_at
    inquiry.original_due_at = dues.original_due_at
    inquiry.due_provisional = dues.provisional
    inquiry.calendar_version = calendar.version
    new = {
        "first_response_due_at": _iso(dues.first_response_due_at),
        "reply_due_at": _iso(dues.reply_due_at),
        "original_due_at": _iso(dues.original_due_at),
        "provisional": dues.provisional,
        "calendar_version": calendar.version,
    }
    record(
        session,
        inquiry,
        actor=actor,
        action=action,
        reason=reason,
        person_id=person_id,
        details=(details or {})
        | {
            "old": old,
            "new": new,
            "paused_days": sum(dues.credits),
            "rule_id": inquiry.deadline_rule_id,
        },
    )
    await session.flush()


async def _rule_or_none(
    session: AsyncSession, inquiry: Inquiry, purpose: str, region_code: str
) -> DeadlineRule | None:
    try:
        return await rule_for(
            session, purpose=purpose, region_code=region_code, channel=inquiry.channel.value
        )
    except NoDeadlineRule:
        return None


async def _first_response_rule(
    session: AsyncSession, inquiry: Inquiry, region_code: str
) -> DeadlineRule | None:
    """`acknowledge` (from receipt), or `urgent` (from when the words arrived) when that comes
    sooner: late urgent words never move a first-response due later, nor erase its breach."""
    acknowledge = await _rule_or_none(session, inquiry, "acknowledge", region_code)
    urgent = (
        await _rule_or_none(session, inquiry, "urgent", region_code) if inquiry.urgent else None
    )
    if urgent is None or inquiry.urgent_at is None:
        return acknowledge
    if acknowledge is None:
        return urgent
    calendar = await store.load(session)
    by_urgent, _ = due_at(inquiry.urgent_at, urgent.unit.value, urgent.length, calendar)
    by_acknowledge, _ = due_at(
        inquiry.received_at, acknowledge.unit.value, acknowledge.length, calendar
    )
    return urgent if by_urgent < by_acknowledge else acknowledge


def _use_first_response_rule(inquiry: Inquiry, rule: DeadlineRule | None) -> None:
    inquiry.first_response_rule_id = rule.id if rule else None
    inquiry.first_response_unit = rule.unit.value if rule else None
    inquiry.first_response_length = rule.length if rule else None


async def set_due(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    purpose: str,
    region_code: str,
    actor: str,
) -> None:
    """Give the inquiry its rules (the reply's by `purpose`, the first response's) and count its
    due times, with provenance. Raises NoDeadlineRule when no reply rule applies."""
    rule = await rule_for(
        session, purpose=purpose, region_code=region_code, channel=inquiry.channel.value
    )
    inquiry.deadline_rule_id = rule.id
    inquiry.deadline_unit = rule.unit.value
    inquiry.deadline_length = rule.length
    first = await _first_response_rule(session, inquiry, region_code)
    _use_first_response_rule(inquiry, first)
    await recount(
        session,
        inquiry,
        actor=actor,
        action=EventAction.deadline_set,
        reason=f"{purpose}: {rule.length} {rule.unit.value} ({rule.source})"
        + (
            f"; first response: {first.length} {first.unit.value} ({first.source})" if first else ""
        ),
        details={"purpose": purpose, "first_response_rule_id": first.id if first else None},
    )


async def became_urgent(
    session: AsyncSession, inquiry: Inquiry, *, at: datetime, actor: str
) -> None:
    """Life-and-safety words arrived at `at`: a person's first response is due by the urgent
    rule (hours, around the clock) from then. The caller holds the row lock."""
    inquiry.urgent_at = inquiry.urgent_at or at
    if inquiry.deadline_unit is None or inquiry.status in ENDED_STATUSES:
        return  # routing counts it, urgent already, when it decides
    first = await _first_response_rule(session, inquiry, await region_of(session, inquiry))
    if first is None or first.purpose != "urgent" or first.id == inquiry.first_response_rule_id:
        return  # the acknowledge due comes first (or has passed): it stands, breach and all
    # A response given before the words arrived did not answer them: one is owed again.
    inquiry.first_responded_at = None
    _use_first_response_rule(inquiry, first)
    await recount(session, inquiry, actor=actor, reason="urgent: the first response is due sooner")


def responded(inquiry: Inquiry, *, at: datetime) -> None:
    """A person responded to the citizen (an answer, an interim reply, a referral they made, a
    recorded call): the first-response due is met. Automatic texts never call this."""
    inquiry.first_responded_at = inquiry.first_responded_at or at


async def recompute_for_kind(session: AsyncSession, inquiry: Inquiry, *, actor: str) -> None:
    """A corrected kind has its own period: counted again from receipt (audited)."""
    if inquiry.reply_due_at is None or inquiry.status in ENDED_STATUSES:
        return
    region_code = await region_of(session, inquiry)
    rule = await rule_for(
        session, purpose=inquiry.kind.value, region_code=region_code, channel=inquiry.channel.value
    )
    inquiry.deadline_rule_id = rule.id
    inquiry.deadline_unit = rule.unit.value
    inquiry.deadline_length = rule.length
    await recount(
        session,
        inquiry,
        actor=actor,
        reason=f"the kind is now {inquiry.kind}: {rule.length} {rule.unit.value} ({rule.source})",
    )


def _touched_by(year: int | None) -> Any:
    """Open inquiries whose due time was provisional, or whose period touches `year`; every
    open inquiry with a due time when `year` is None."""
    local = "Asia/Shanghai"
    counted = and_(Inquiry.deadline_unit.is_not(None), Inquiry.status.not_in(ENDED_STATUSES))
    if year is None:
        return counted
    return and_(
        counted,
        or_(
            Inquiry.due_provisional,
            and_(
                func.extract("year", func.timezone(local, Inquiry.received_at)) <= year,
                func.extract("year", func.timezone(local, Inquiry.reply_due_at)) >= year,
            ),
        ),
    )


_DEFER_RECOUNT = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('routing', 'recount_year', 0, NULL, NULL,"
    " jsonb_build_object('recount_id', CAST(:recount_id AS integer)), NULL)"
    "::procrastinate_job_to_defer_v1])"
)


async def start_recount(
    session: AsyncSession, year: int, *, now: datetime, actor: str
) -> CalendarRecount:
    """A year was entered: its open inquiries are counted again by a batched job, queued in this
    transaction (it runs once the entry has committed). The admin reads its progress."""
    total = await session.scalar(select(func.count()).select_from(Inquiry).where(_touched_by(year)))
    run = CalendarRecount(
        year=year,
        requested_at=now,
        requested_by=actor,
        status=RecountStatus.running,
        total=total or 0,
        done=0,
        after_id=0,
    )
    session.add(run)
    await session.flush()
    await session.execute(_DEFER_RECOUNT, {"recount_id": run.id})
    return run


async def recount_batch(
    session: AsyncSession, recount_id: int, *, now: datetime, batch: int = 200
) -> bool:
    """Count one batch of the year's inquiries again, each under its row lock, and record the
    progress; returns False when the run is done."""
    run = await session.scalar(
        select(CalendarRecount).where(CalendarRecount.id == recount_id).with_for_update()
    )
    if run is None or run.status is RecountStatus.done:
        return False
    inquiries = list(
        await session.scalars(
            select(Inquiry)
            .where(_touched_by(run.year), Inquiry.id > run.after_id)
            .order_by(Inquiry.id)
            .limit(batch)
            .with_for_update(key_share=True)
        )
    )
    calendar = await store.load(session)
    for inquiry in inquiries:
        await recount(
            session,
            inquiry,
            actor=run.requested_by,
            reason=f"the calendar for {run.year} changed: the deadline is counted again"
            if run.year is not None
            else "the deadline clock changed (migration 0015): the deadline is counted again",
            calendar=calendar,
        )
    if inquiries:
        run.done += len(inquiries)
        run.after_id = inquiries[-1].id
    else:
        run.status, run.finished_at = RecountStatus.done, now
    await session.flush()
    return bool(inquiries)


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


async def seed_database(url: str, *, through_year: int) -> list[int]:
    """The seed as a command: `make run` and the test suite run it after migrating."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with async_sessionmaker(engine).begin() as session:
            written = await store.seed(session, through_year=through_year)
            await backfill(session)
            return written
    finally:
        await engine.dispose()
