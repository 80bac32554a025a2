"""Warnings and escalation, fired by a periodic sweep (durable, idempotent), never by timers.
"Overdue" is a query over due times, not a stored flag. Each inquiry has two clocks: the first
response (never stopped) and the reply (stopped by a running pause: a stopped clock is never a
breach, nor worth a warning)."""

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import (
    ColumnElement,
    Interval,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.calendar import CHINA, WorkCalendar
from app.deadlines.models import AlertKind, Clock, DeadlineAlert, DeadlinePause, PauseStatus
from app.deadlines.store import load
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries.models import EventAction, Inquiry, InquiryStatus
from app.inquiries.service import record

OPEN = (InquiryStatus.new, InquiryStatus.assigned)
ONE_DAY = timedelta(days=1)
SWEEPER = "system:deadlines"


def clock_running() -> ColumnElement[bool]:
    """No pause is running on the inquiry."""
    return ~exists().where(
        DeadlinePause.inquiry_id == Inquiry.id, DeadlinePause.status == PauseStatus.running
    )


def overdue(now: datetime) -> Select[Inquiry]:
    """Open inquiries past their reply due time, their clock running."""
    return select(Inquiry).where(
        Inquiry.status.in_(OPEN), Inquiry.reply_due_at < now, clock_running()
    )


def breached(now: datetime) -> Select[Inquiry]:
    """Open inquiries past either due time: the reply's (clock running), or the first
    response's while no person has responded."""
    return select(Inquiry).where(
        Inquiry.status.in_(OPEN),
        or_(
            and_(Inquiry.reply_due_at < now, clock_running()),
            and_(Inquiry.first_response_due_at < now, Inquiry.first_responded_at.is_(None)),
        ),
    )


@dataclass(frozen=True)
class Span:
    """One clock of one inquiry: from when it counts, when it is due, by which period."""

    clock: Clock
    start: datetime
    due: datetime
    unit: str
    length: int
    # What ended pauses gave back: not time that has passed on the clock.
    credited_days: int = 0
    stopped: timedelta = timedelta(0)


@dataclass(frozen=True)
class Stopped:
    """An inquiry's ended pauses, summed."""

    credited_days: int = 0
    stopped: timedelta = timedelta(0)


def spans(inquiry: Inquiry, *, paused: bool, ended: Stopped | None = None) -> list[Span]:
    """The clocks the sweep looks at: the first response until a person has responded, the
    reply unless its clock is stopped."""
    ended = ended or Stopped()
    found = []
    if (
        inquiry.first_response_due_at is not None
        and inquiry.first_responded_at is None
        and inquiry.first_response_unit is not None
    ):
        found.append(
            Span(
                Clock.first_response,
                inquiry.first_response_from or inquiry.received_at,
                inquiry.first_response_due_at,
                inquiry.first_response_unit,
                inquiry.first_response_length or 1,
            )
        )
    if inquiry.reply_due_at is not None and inquiry.deadline_unit is not None and not paused:
        found.append(
            Span(
                Clock.reply,
                inquiry.received_at,
                inquiry.reply_due_at,
                inquiry.deadline_unit,
                inquiry.deadline_length or 1,
                ended.credited_days,
                ended.stopped,
            )
        )
    return found


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_office_hours(now: datetime, calendar: WorkCalendar, hours: tuple[str, str]) -> bool:
    local = now.astimezone(CHINA)
    return calendar.is_working_day(local.date()) and (
        _clock(hours[0]) <= local.time() < _clock(hours[1])
    )


def elapsed_share(
    span: Span, now: datetime, calendar: WorkCalendar, hours: tuple[str, str]
) -> float:
    """How much of the working time has passed: whole working days since the start plus the
    share of today's office hours; wall-clock for hours rules."""
    if span.unit == "hours":
        total = (span.due - span.start - span.stopped).total_seconds()
        gone = (now - span.start - span.stopped).total_seconds()
        return gone / total if total > 0 else 1.0
    received = span.start.astimezone(CHINA).date()
    due = span.due.astimezone(CHINA).date()
    local = now.astimezone(CHINA)
    total = calendar.working_days_between(received, due)
    if total - span.credited_days <= 0:
        return 1.0
    done: float = calendar.working_days_between(received, local.date() - timedelta(days=1))
    if calendar.is_working_day(local.date()) and local.date() > received:
        start, end = _clock(hours[0]), _clock(hours[1])
        day = datetime.combine(local.date(), start, CHINA)
        length = (datetime.combine(local.date(), end, CHINA) - day).total_seconds()
        done += min(1.0, max(0.0, (local - day).total_seconds() / length))
    return (done - span.credited_days) / (total - span.credited_days)


def escalation_level(span: Span, now: datetime, calendar: WorkCalendar) -> int:
    """0 before the deadline; 1 at the breach; one more for each further period of its length
    that has ended: a period of days ends at the end of its last day, so only days wholly past
    count (today does not)."""
    if now <= span.due:
        return 0
    length = max(1, span.length)
    due_day, yesterday = span.due.astimezone(CHINA).date(), now.astimezone(CHINA).date() - ONE_DAY
    if span.unit == "hours":
        over = (now - span.due) / timedelta(hours=length)
    elif span.unit == "calendar_days":
        over = max(0, (yesterday - due_day).days) / length
    else:
        over = calendar.working_days_between(due_day, yesterday) / length
    return 1 + int(over)


_NAMES = {Clock.first_response: "first response", Clock.reply: "reply"}


async def _fire(
    session: AsyncSession,
    inquiry: Inquiry,
    span: Span,
    *,
    kind: AlertKind,
    level: int,
    department: Department | None,
    now: datetime,
    reason: str,
) -> bool:
    # Under the inquiry's row lock, like every other writer of its events: its change ids (the
    # version If-Match compares) then follow commit order. The page was read without it, so a
    # change committed meanwhile (an answer, a pause, a recount) leaves this to the next sweep.
    now_facts = (
        await session.execute(
            select(
                Inquiry.status,
                Inquiry.reply_due_at,
                Inquiry.first_response_due_at,
                Inquiry.first_responded_at,
                clock_running(),
            )
            .where(Inquiry.id == inquiry.id)
            .with_for_update(of=Inquiry, key_share=True)
        )
    ).one()
    *facts, running = now_facts
    read = [
        inquiry.status,
        inquiry.reply_due_at,
        inquiry.first_response_due_at,
        inquiry.first_responded_at,
    ]
    if facts != read or (span.clock is Clock.reply and not running):
        return False
    inserted = await session.scalar(
        insert(DeadlineAlert)
        .values(
            inquiry_id=inquiry.id,
            clock=span.clock,
            kind=kind,
            level=level,
            department_id=department.id if department else None,
            fired_at=now,
        )
        .on_conflict_do_nothing(index_elements=["inquiry_id", "clock", "kind", "level"])
        .returning(DeadlineAlert.id)
    )
    if inserted is None:
        return False  # fired before, maybe by a concurrent sweep
    record(
        session,
        inquiry,
        actor=SWEEPER,
        action=EventAction.escalated
        if kind is AlertKind.escalation
        else EventAction.deadline_warning,
        reason=f"{_NAMES[span.clock]}: {reason}",
        details={
            "clock": span.clock.value,
            "level": level,
            "department": department.code if department else None,
        },
    )
    return True


Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def sweep(
    transaction: Transaction,
    *,
    now: datetime,
    office_hours: tuple[str, str],
    fractions: Sequence[float],
    batch: int = 1000,
) -> int:
    """Fire what is due for every open inquiry with a deadline; returns how many alerts fired.
    Each page is its own transaction, so intake never waits on a whole sweep."""
    fired, after_id = 0, 0
    while True:
        async with transaction() as session:
            count, last = await sweep_page(
                session,
                after_id=after_id,
                now=now,
                office_hours=office_hours,
                fractions=fractions,
                batch=batch,
            )
        fired += count
        if last is None:
            return fired
        after_id = last


def page_query(after_id: int, batch: int) -> Select[Inquiry, bool]:
    """The open inquiries after `after_id`, by id (what ix_inquiry_open_clock serves), each with
    whether its clock stands still: read in the same statement, so a pause that ends meanwhile
    is never seen as running on a stale due time, nor the reverse."""
    return (
        select(Inquiry, ~clock_running())
        .where(
            Inquiry.status.in_(OPEN),
            Inquiry.department_id.is_not(None),
            Inquiry.reply_due_at.is_not(None),
            Inquiry.id > after_id,
        )
        .order_by(Inquiry.id)
        .limit(batch)
    )


async def sweep_page(
    session: AsyncSession,
    *,
    after_id: int,
    now: datetime,
    office_hours: tuple[str, str],
    fractions: Sequence[float],
    batch: int,
) -> tuple[int, int | None]:
    """One keyset page of open inquiries (over the partial index ix_inquiry_open_clock); returns
    the alerts fired and the last id looked at (None: no page left)."""
    calendar = await load(session)
    office_time = in_office_hours(now, calendar, office_hours)
    rows = (await session.execute(page_query(after_id, batch))).all()
    if not rows:
        return 0, None
    page = [inquiry for inquiry, _ in rows]
    paused = {inquiry.id for inquiry, stopped in rows if stopped}
    ids = [inquiry.id for inquiry in page]
    ended = {
        inquiry_id: Stopped(int(days or 0), length or timedelta(0))
        for inquiry_id, days, length in await session.execute(
            select(
                DeadlinePause.inquiry_id,
                func.sum(DeadlinePause.working_days_added),
                type_coerce(
                    func.sum(DeadlinePause.ended_at - DeadlinePause.started_at), Interval()
                ),
            )
            .where(DeadlinePause.inquiry_id.in_(ids), DeadlinePause.status == PauseStatus.ended)
            .group_by(DeadlinePause.inquiry_id)
        )
    }
    # What fired already, for the whole page in one query: a sweep every minute must not redo
    # the work (or the office look-ups) for settled alerts.
    fired_before = await session.execute(
        select(
            DeadlineAlert.inquiry_id, DeadlineAlert.clock, DeadlineAlert.kind, DeadlineAlert.level
        ).where(DeadlineAlert.inquiry_id.in_(ids))
    )
    done = {tuple(row) for row in fired_before}
    fired = 0
    for inquiry in page:
        for span in spans(inquiry, paused=inquiry.id in paused, ended=ended.get(inquiry.id)):
            if office_time or span.unit == "hours":
                fired += await _warn(
                    session, inquiry, span, now, calendar, office_hours, fractions, done
                )
            fired += await _escalate(session, inquiry, span, now, calendar, done)
    await session.flush()
    return fired, page[-1].id


async def _warn(
    session: AsyncSession,
    inquiry: Inquiry,
    span: Span,
    now: datetime,
    calendar: WorkCalendar,
    office_hours: tuple[str, str],
    fractions: Sequence[float],
    done: set[tuple[object, ...]],
) -> int:
    pending = [
        f
        for f in fractions
        if (inquiry.id, span.clock, AlertKind.warning, round(f * 100)) not in done
    ]
    if not pending:
        return 0
    share = elapsed_share(span, now, calendar, office_hours)
    fired = 0
    for fraction in pending:
        if share >= fraction:
            percent = round(fraction * 100)
            fired += await _fire(
                session,
                inquiry,
                span,
                kind=AlertKind.warning,
                level=percent,
                department=None,
                now=now,
                reason=f"{percent}% of the working time has passed",
            )
    return fired


async def _escalate(
    session: AsyncSession,
    inquiry: Inquiry,
    span: Span,
    now: datetime,
    calendar: WorkCalendar,
    done: set[tuple[object, ...]],
) -> int:
    level = escalation_level(span, now, calendar)
    missing = [
        s
        for s in range(1, level + 1)
        if (inquiry.id, span.clock, AlertKind.escalation, s) not in done
    ]
    if not missing:
        return 0
    holder = await session.get(Department, inquiry.department_id)
    assert holder is not None
    offices = await departments.enclosing_offices(session, holder)
    parent = await session.get(Department, holder.parent_id) if holder.parent_id else None
    fired = 0
    for step in missing:
        # Step 1: the parent department (else the nearest office); then one office up per step.
        if step == 1:
            reader = parent or (offices[0] if offices else None)
        else:
            reader = offices[min(step - 1, len(offices) - 1)] if offices else parent
        fired += await _fire(
            session,
            inquiry,
            span,
            kind=AlertKind.escalation,
            level=step,
            department=reader,
            now=now,
            reason=f"overdue: escalation level {step}",
        )
    return fired
