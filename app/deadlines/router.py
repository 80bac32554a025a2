from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from app import problems
from app.auth import AdminDep, CurrentPrincipal
from app.clock import NowDep
from app.db import SessionDep
from app.deadlines import alerts, service, store
from app.deadlines.models import (
    AlertKind,
    CalendarDay,
    CalendarRecount,
    CalendarYear,
    DeadlineAlert,
    DeadlineRule,
)
from app.deadlines.schemas import (
    CalendarDayRead,
    CalendarYearRead,
    DeadlineRuleCreate,
    DeadlineRuleRead,
    DeadlineRuleUpdate,
    RecountRead,
    YearEntry,
)
from app.inquiries.models import Inquiry
from app.inquiries.schemas import InquiryRead
from app.inquiries.service import visible_to
from app.rule_changes import record_change, snapshot
from app.schemas import Page, PageDep, RowId, paginate

CalendarYearParam = Annotated[int, Path(ge=1949, le=2200, description="A calendar year.")]
router = APIRouter(
    prefix="/api/v1/admin/calendar",
    tags=["admin: calendar"],
    responses=problems.doc(problems.Unauthorized),
)


class StrayDate(problems.Problem):
    status = 422
    title = "Date outside the year"
    slug = "stray-date"
    example_detail = "2028-01-01 is not in 2027."


class YearNotFound(problems.NotFound):
    title = "Year not in the calendar"
    slug = "calendar-year-not-found"
    example_detail = "2031 is not in the calendar."


@router.get("", summary="Years of the working-day calendar")
async def list_years(_: AdminDep, session: SessionDep) -> list[CalendarYearRead]:
    """Every year, official (a notice is entered) or provisional, with its source."""
    years = await session.scalars(select(CalendarYear).order_by(CalendarYear.year))
    return [CalendarYearRead.model_validate(year) for year in years]


async def _read(session: SessionDep, year: int) -> CalendarYearRead:
    row = await session.get(CalendarYear, year)
    if row is None:
        raise YearNotFound(f"{year} is not in the calendar.")
    days = await session.scalars(
        select(CalendarDay).where(CalendarDay.year == year).order_by(CalendarDay.day)
    )
    read = CalendarYearRead.model_validate(row)
    read.days = [CalendarDayRead.model_validate(day) for day in days]
    recount = await session.scalar(
        select(CalendarRecount)
        .where(CalendarRecount.year == year)
        .order_by(CalendarRecount.id.desc())
        .limit(1)
    )
    read.recount = RecountRead.model_validate(recount) if recount else None
    return read


@router.get(
    "/{year}", summary="One year's days off and 调休 days", responses=problems.doc(YearNotFound)
)
async def read_year(year: CalendarYearParam, _: AdminDep, session: SessionDep) -> CalendarYearRead:
    """The days that are not what their weekday says, with the year's source."""
    return await _read(session, year)


@router.put(
    "/{year}", summary="Enter or correct a year from its notice", responses=problems.doc(StrayDate)
)
async def enter_year(
    year: CalendarYearParam, entry: YearEntry, _: AdminDep, session: SessionDep, now: NowDep
) -> CalendarYearRead:
    """Replace the year's days with the notice's and mark it official (its version bumps).
    Every date must fall in the year. Open inquiries whose deadline was provisional, or whose
    period touches the year, are counted again (audited: old and new due times) by a batched
    job queued with the entry; `recount` shows its progress (read the year again)."""
    if stray := [d.day for d in [*entry.days_off, *entry.workdays] if d.day.year != year]:
        raise StrayDate(f"{stray[0]} is not in {year}.")
    known = list(await session.scalars(select(CalendarYear.year)))
    if known and not (min(known) <= year <= max(known) + 1):
        # A gap of years with no rows would have no working days at all.
        raise StrayDate(f"Enter a year from {min(known)} to {max(known) + 1}; {year} leaves a gap.")
    await store.enter_year(
        session,
        year,
        source=entry.source,
        days_off=[(d.day, d.name) for d in entry.days_off],
        workdays=[(d.day, d.name) for d in entry.workdays],
    )
    await service.start_recount(session, year, now=now, actor=f"admin: calendar {year} entered")
    return await _read(session, year)


rules_router = APIRouter(
    prefix="/api/v1/admin/deadline-rules",
    tags=["admin: deadlines"],
    responses=problems.doc(problems.Unauthorized),
)


class LastFallbackRule(problems.Conflict):
    title = "Last rule for every region"
    slug = "last-fallback-deadline-rule"
    example_detail = "consultation needs a rule for every region: change this one instead."


class DeadlineRuleNotFound(problems.NotFound):
    title = "Deadline rule not found"
    slug = "deadline-rule-not-found"
    example_detail = "No deadline rule 42."


@rules_router.get("", summary="Deadline rules")
async def list_rules(_: AdminDep, session: SessionDep) -> list[DeadlineRuleRead]:
    """Every rule; per purpose the most specific region prefix wins, then a channel's own rule."""
    rules = await session.scalars(
        select(DeadlineRule).order_by(DeadlineRule.purpose, DeadlineRule.id)
    )
    return [DeadlineRuleRead.model_validate(rule) for rule in rules]


@rules_router.post("", status_code=201, summary="Add a deadline rule")
async def create_rule(
    data: DeadlineRuleCreate, _: AdminDep, session: SessionDep
) -> DeadlineRuleRead:
    """A region's own period for a purpose, with the document it comes from (audited)."""
    rule = DeadlineRule(**data.model_dump(), is_default=False, active=True)
    session.add(rule)
    await record_change(session, rule, before=None)
    return DeadlineRuleRead.model_validate(rule)


@rules_router.patch(
    "/{rule_id}",
    summary="Change a deadline rule",
    responses=problems.doc(DeadlineRuleNotFound, LastFallbackRule),
)
async def update_rule(
    rule_id: RowId, data: DeadlineRuleUpdate, _: AdminDep, session: SessionDep
) -> DeadlineRuleRead:
    """Change unit, length, source or active flag (audited). Deadlines already set keep the rule
    they were set with; a change applies to inquiries routed afterwards."""
    rule = await session.get(DeadlineRule, rule_id)
    if rule is None:
        raise DeadlineRuleNotFound(f"No deadline rule {rule_id}.")
    before = snapshot(rule)
    if data.active is False and rule.region_prefix is None and rule.channel is None:
        others = await session.scalar(
            select(func.count()).where(
                DeadlineRule.purpose == rule.purpose,
                DeadlineRule.region_prefix.is_(None),
                DeadlineRule.channel.is_(None),
                DeadlineRule.active,
                DeadlineRule.id != rule.id,
            )
        )
        if not others:
            raise LastFallbackRule(
                f"{rule.purpose} needs a rule for every region: change this one instead."
            )
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(rule, field, value)
    rule.is_default = False
    await record_change(session, rule, before=before)
    return DeadlineRuleRead.model_validate(rule)


escalations_router = APIRouter(prefix="/api/v1/escalations", tags=["inquiries"])


@escalations_router.get(
    "",
    summary="Overdue inquiries escalated to you",
    responses=problems.doc(problems.Unauthorized),
)
async def list_escalations(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep, now: NowDep
) -> Page[InquiryRead]:
    """For a supervising office, every overdue, escalated inquiry of its region; for a parent
    department, those escalated to it. Overdue: past the reply due time (clock running), or
    past the first-response due time with no person's response yet. Earliest reply due first.
    Reading is not acting."""
    escalated = (
        select(DeadlineAlert.id)
        .where(DeadlineAlert.inquiry_id == Inquiry.id, DeadlineAlert.kind == AlertKind.escalation)
        .exists()
    )
    statement = (
        visible_to(principal.department)
        .where(Inquiry.id.in_(alerts.breached(now).with_only_columns(Inquiry.id)), escalated)
        .options(
            joinedload(Inquiry.account),
            selectinload(Inquiry.messages),
            selectinload(Inquiry.assignments),
        )
        .order_by(Inquiry.reply_due_at)
    )
    return await paginate(session, statement, page, InquiryRead)
