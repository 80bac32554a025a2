"""Warnings and escalation, fired by a periodic sweep (durable, idempotent), never by timers.
"Overdue" is a query over due times, not a stored flag."""

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.calendar import CHINA, WorkCalendar
from app.deadlines.models import AlertKind, DeadlineAlert, DeadlinePause
from app.deadlines.service import load
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries.models import EventAction, Inquiry, InquiryStatus
from app.inquiries.service import record

OPEN = (InquiryStatus.new, InquiryStatus.assigned)
ONE_DAY = timedelta(days=1)
SWEEPER = "system:deadlines"


def _clock_running() -> ColumnElement[bool]:
    """No pause is open: a stopped clock is never a breach, nor worth a warning."""
    return ~exists().where(DeadlinePause.inquiry_id == Inquiry.id, DeadlinePause.ended_at.is_(None))


def overdue(now: datetime) -> Select[Inquiry]:
    """Open inquiries past their due time, their clock running."""
    return select(Inquiry).where(
        Inquiry.status.in_(OPEN), Inquiry.reply_due_at < now, _clock_running()
    )


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def in_office_hours(now: datetime, calendar: WorkCalendar, hours: tuple[str, str]) -> bool:
    local = now.astimezone(CHINA)
    return calendar.is_working_day(local.date()) and (
        _clock(hours[0]) <= local.time() < _clock(hours[1])
    )


def elapsed_share(
    inquiry: Inquiry, now: datetime, calendar: WorkCalendar, hours: tuple[str, str]
) -> float:
    """How much of the working time has passed: whole working days since receipt plus the
    share of today's office hours; wall-clock for hours rules."""
    assert inquiry.reply_due_at is not None
    if inquiry.deadline_unit == "hours":
        total = (inquiry.reply_due_at - inquiry.received_at).total_seconds()
        return (now - inquiry.received_at).total_seconds() / total if total > 0 else 1.0
    received = inquiry.received_at.astimezone(CHINA).date()
    due = inquiry.reply_due_at.astimezone(CHINA).date()
    local = now.astimezone(CHINA)
    total = calendar.working_days_between(received, due)
    if total <= 0:
        return 1.0
    done: float = calendar.working_days_between(received, local.date() - timedelta(days=1))
    if calendar.is_working_day(local.date()) and local.date() > received:
        start, end = _clock(hours[0]), _clock(hours[1])
        day = datetime.combine(local.date(), start, CHINA)
        span = (datetime.combine(local.date(), end, CHINA) - day).total_seconds()
        done += min(1.0, max(0.0, (local - day).total_seconds() / span))
    return done / total


def escalation_level(inquiry: Inquiry, now: datetime, calendar: WorkCalendar) -> int:
    """0 before the deadline; 1 at the breach; one more for each further period of its length
    that has ended: a period of days ends at the end of its last day, so only days wholly past
    count (today does not)."""
    due = inquiry.reply_due_at
    if due is None or now <= due:
        return 0
    length = max(1, inquiry.deadline_length or 1)
    due_day, yesterday = due.astimezone(CHINA).date(), now.astimezone(CHINA).date() - ONE_DAY
    if inquiry.deadline_unit == "hours":
        over = (now - due) / timedelta(hours=length)
    elif inquiry.deadline_unit == "calendar_days":
        over = max(0, (yesterday - due_day).days) / length
    else:
        over = calendar.working_days_between(due_day, yesterday) / length
    return 1 + int(over)


async def _fire(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    kind: AlertKind,
    level: int,
    department: Department | None,
    now: datetime,
    reason: str,
) -> bool:
    inserted = await session.scalar(
        insert(DeadlineAlert)
        .values(
            inquiry_id=inquiry.id,
            kind=kind,
            level=level,
            department_id=department.id if department else None,
            fired_at=now,
        )
        .on_conflict_do_nothing(index_elements=["inquiry_id", "kind", "level"])
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
        reason=reason,
        details={"level": level, "department": department.code if department else None},
    )
    return True


async def sweep(
    session: AsyncSession,
    *,
    now: datetime,
    office_hours: tuple[str, str],
    fractions: Sequence[float],
    batch: int = 1000,
) -> int:
    """Fire what is due for every open inquiry with a deadline; returns how many alerts fired."""
    calendar = await load(session)
    office_time = in_office_hours(now, calendar, office_hours)
    fired, after_id = 0, 0
    while True:  # keyset pages: every open inquiry is looked at in every sweep
        page = list(
            await session.scalars(
                select(Inquiry)
                .where(
                    Inquiry.status.in_(OPEN),
                    Inquiry.reply_due_at.is_not(None),
                    Inquiry.department_id.is_not(None),
                    _clock_running(),
                    Inquiry.id > after_id,
                )
                .order_by(Inquiry.id)
                .limit(batch)
            )
        )
        if not page:
            break
        after_id = page[-1].id
        # What fired already, for the whole page in one query: a sweep every minute must not
        # redo the work (or the office look-ups) for alerts that are long settled.
        fired_before = await session.execute(
            select(DeadlineAlert.inquiry_id, DeadlineAlert.kind, DeadlineAlert.level).where(
                DeadlineAlert.inquiry_id.in_([i.id for i in page])
            )
        )
        done = {(inquiry_id, kind, level) for inquiry_id, kind, level in fired_before}
        for inquiry in page:
            if office_time or inquiry.deadline_unit == "hours":
                fired += await _warn(session, inquiry, now, calendar, office_hours, fractions, done)
            fired += await _escalate(session, inquiry, now, calendar, done)
    await session.flush()
    return fired


async def _warn(
    session: AsyncSession,
    inquiry: Inquiry,
    now: datetime,
    calendar: WorkCalendar,
    office_hours: tuple[str, str],
    fractions: Sequence[float],
    done: set[tuple[int, AlertKind, int]],
) -> int:
    pending = [f for f in fractions if (inquiry.id, AlertKind.warning, round(f * 100)) not in done]
    if not pending:
        return 0
    share = elapsed_share(inquiry, now, calendar, office_hours)
    fired = 0
    for fraction in pending:
        if share >= fraction:
            percent = round(fraction * 100)
            fired += await _fire(
                session,
                inquiry,
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
    now: datetime,
    calendar: WorkCalendar,
    done: set[tuple[int, AlertKind, int]],
) -> int:
    level = escalation_level(inquiry, now, calendar)
    missing = [s for s in range(1, level + 1) if (inquiry.id, AlertKind.escalation, s) not in done]
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
            kind=AlertKind.escalation,
            level=step,
            department=reader,
            now=now,
            reason=f"overdue: escalation level {step}",
        )
    return fired
