"""A department's work: the list of its inquiries (keyset pages by due time, no count) and the
change feed (in transaction order, never skipping a late commit). Polling clients live here, so
each answer is one indexed query."""

import base64
import binascii
import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.deadlines.alerts import clock_running
from app.deadlines.models import (
    AlertKind,
    DeadlineAlert,
    DeadlineExtension,
    DeadlinePause,
    ExtensionStatus,
    PauseStatus,
)
from app.departments.models import Department
from app.departments.service import office_encloses
from app.inquiries.models import (
    Channel,
    Inquiry,
    InquiryChange,
    InquiryKind,
    InquiryMessage,
    InquiryStatus,
)
from app.problems import Problem

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)  # where inquiries without a due time sort


class BadCursor(Problem):
    status = 422
    title = "Unreadable cursor"
    slug = "bad-cursor"
    example_detail = "Pass back the `next` value of the previous answer, unchanged."


class Awaiting(enum.StrEnum):
    arbitration = "arbitration"
    extension = "extension"
    pause = "pause"


@dataclass(frozen=True)
class Filters:
    status: InquiryStatus | None = None
    kind: InquiryKind | None = None
    channel: Channel | None = None
    urgent: bool | None = None
    overdue: bool | None = None
    due_before: datetime | None = None
    provisional: bool | None = None
    paused: bool | None = None
    awaiting: Awaiting | None = None
    holder: str | None = None
    fallback: bool | None = None  # routed by no rule: the owner's triage
    text: str | None = None


def version() -> ColumnElement[int]:
    """An inquiry's version: its latest change (0 before any)."""
    return (
        select(func.coalesce(func.max(InquiryChange.id), 0))
        .where(InquiryChange.inquiry_id == Inquiry.id)
        .scalar_subquery()
    )


def _paused() -> ColumnElement[bool]:
    return ~clock_running()


def _filtered(statement: Select[Inquiry], filters: Filters, now: datetime) -> Select[Inquiry]:
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(Inquiry.status == filters.status)
    if filters.kind is not None:
        conditions.append(Inquiry.kind == filters.kind)
    if filters.channel is not None:
        conditions.append(Inquiry.channel == filters.channel)
    if filters.urgent is not None:
        conditions.append(Inquiry.urgent.is_(filters.urgent))
    if filters.provisional is not None:
        conditions.append(Inquiry.due_provisional.is_(filters.provisional))
    if filters.due_before is not None:
        conditions.append(Inquiry.reply_due_at < filters.due_before)
    if filters.overdue is not None:
        # The same conditions as alerts.breached, on the row itself (an IN over every breached
        # inquiry in the database would be read for each page).
        late = and_(
            Inquiry.status.in_([InquiryStatus.new, InquiryStatus.assigned]),
            or_(
                and_(Inquiry.reply_due_at < now, clock_running()),
                and_(Inquiry.first_response_due_at < now, Inquiry.first_responded_at.is_(None)),
            ),
        )
        conditions.append(late if filters.overdue else ~late)
    if filters.paused is not None:
        conditions.append(_paused() if filters.paused else ~_paused())
    if filters.fallback is not None:
        routed_by_rule = Inquiry.routing_rule_id.is_not(None)
        conditions.append(
            and_(Inquiry.routed_at.is_not(None), ~routed_by_rule)
            if filters.fallback
            else routed_by_rule
        )
    if filters.awaiting is Awaiting.arbitration:
        conditions.append(
            and_(Inquiry.arbitration_office_id.is_not(None), Inquiry.arbitrated_at.is_(None))
        )
    elif filters.awaiting is Awaiting.extension:
        conditions.append(
            exists().where(
                DeadlineExtension.inquiry_id == Inquiry.id,
                DeadlineExtension.status == ExtensionStatus.requested,
            )
        )
    elif filters.awaiting is Awaiting.pause:
        conditions.append(
            exists().where(
                DeadlinePause.inquiry_id == Inquiry.id,
                DeadlinePause.status == PauseStatus.requested,
            )
        )
    if filters.holder is not None:
        holder = aliased(Department)
        conditions.append(
            exists().where(holder.id == Inquiry.department_id, holder.code == filters.holder)
        )
    if filters.text:
        # A substring match, so two-character terms such as 社保 match (trigram indexes need
        # three); it runs over the messages of the key's own inquiries only.
        pattern = "%" + filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(
            exists().where(
                InquiryMessage.inquiry_id == Inquiry.id,
                InquiryMessage.content.like(pattern + "%", escape="\\"),
            )
        )
    return statement.where(*conditions)


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("Pass back the `next` value of the previous answer, unchanged.") from None
    parts = raw.split("|")
    if len(parts) != count:
        raise BadCursor("Pass back the `next` value of the previous answer, unchanged.")
    return parts


@dataclass(frozen=True)
class Row:
    inquiry: Inquiry
    holder: str | None
    version: int
    paused: bool


# What the list shows when no status is asked for: the work still to do (and to close).
OPEN_WORK = (InquiryStatus.new, InquiryStatus.assigned, InquiryStatus.replied)


async def _scopes(session: AsyncSession, department: Department) -> list[ColumnElement[bool]]:
    """What a key may read, as separate conditions each an index serves (one OR of them would
    make the planner scan every inquiry): its own; an office's region; what was escalated to it."""
    scopes: list[ColumnElement[bool]] = [Inquiry.department_id == department.id]
    if department.is_supervising_office:
        office, handler = aliased(Department), aliased(Department)
        region = list(
            await session.scalars(
                select(handler.id)
                .join(office, office.id == department.id)
                .where(office_encloses(office, handler))
            )
        )
        if region:
            scopes.append(Inquiry.department_id.in_(region))
    escalated = select(DeadlineAlert.inquiry_id).where(
        DeadlineAlert.department_id == department.id, DeadlineAlert.kind == AlertKind.escalation
    )
    scopes.append(Inquiry.id.in_(escalated))
    return scopes


def _after(cursor: str | None) -> tuple[datetime | None, int]:
    """The cursor: the last row's due time (None: in the tail of rows without one) and id."""
    if not cursor:
        return None, 0
    phase, due_text, id_text = decode_cursor(cursor, 3)
    try:
        return (None if phase == "n" else datetime.fromisoformat(due_text)), int(id_text)
    except ValueError:
        raise BadCursor("Pass back the `next` value of the previous answer.") from None


async def _collect(
    session: AsyncSession,
    statement: Select[Inquiry],
    holder: Any,
    limit: int,
    found: dict[int, Row],
) -> int:
    rows = (
        await session.execute(
            statement.outerjoin(holder, holder.id == Inquiry.department_id)
            .add_columns(holder.code, version(), _paused())
            .limit(limit + 1)
        )
    ).all()
    for inquiry, code, seen_version, stopped in rows:
        found[inquiry.id] = Row(inquiry, code, seen_version, bool(stopped))
    return len(rows)


async def page(
    session: AsyncSession,
    department: Department,
    filters: Filters,
    *,
    now: datetime,
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One keyset page by due time, then id (inquiries without a due time last, by id): a
    change meanwhile never repeats or skips a row. Each scope is its own indexed, ordered,
    limited query; their rows are merged here."""
    holder = aliased(Department)
    after_due, after_id = _after(cursor)
    in_tail = cursor is not None and after_due is None
    found: dict[int, Row] = {}
    for scope in await _scopes(session, department):
        base = _filtered(select(Inquiry).where(scope), filters, now)
        if filters.status is None:
            base = base.where(Inquiry.status.in_(OPEN_WORK))
        dated_rows = 0
        if not in_tail:
            dated = base.where(Inquiry.reply_due_at.is_not(None))
            if after_due is not None:
                dated = dated.where(
                    tuple_(Inquiry.reply_due_at, Inquiry.id) > tuple_(after_due, after_id)
                )
            dated_rows = await _collect(
                session, dated.order_by(Inquiry.reply_due_at, Inquiry.id), holder, limit, found
            )
        if dated_rows <= limit:  # the page may reach the rows without a due time
            undated = base.where(Inquiry.reply_due_at.is_(None))
            if in_tail:
                undated = undated.where(Inquiry.id > after_id)
            await _collect(session, undated.order_by(Inquiry.id), holder, limit, found)
    ordered = sorted(
        found.values(),
        key=lambda row: (
            row.inquiry.reply_due_at is None,
            row.inquiry.reply_due_at or FAR_FUTURE,
            row.inquiry.id,
        ),
    )
    rows_out = ordered[:limit]
    following = None
    if len(ordered) > limit:
        last = rows_out[-1].inquiry
        if last.reply_due_at is None:
            following = encode_cursor("n", "", str(last.id))
        else:
            following = encode_cursor("d", last.reply_due_at.isoformat(), str(last.id))
    return rows_out, following


# Each minimum over its own partial index (ix_inquiry_department_open_due,
# ix_inquiry_department_first_response); escalated inquiries are few.
_BOUNDARY = text(
    """
    SELECT least(
        (SELECT min(reply_due_at) FROM inquiry
          WHERE department_id = ANY(:departments) AND status IN ('new', 'assigned')
            AND reply_due_at > :now),
        (SELECT min(first_response_due_at) FROM inquiry
          WHERE department_id = ANY(:departments) AND status IN ('new', 'assigned')
            AND first_responded_at IS NULL AND first_response_due_at > :now),
        (SELECT min(least(CASE WHEN i.reply_due_at > :now THEN i.reply_due_at END,
                          CASE WHEN i.first_responded_at IS NULL
                                AND i.first_response_due_at > :now
                               THEN i.first_response_due_at END))
           FROM deadline_alert a JOIN inquiry i ON i.id = a.inquiry_id
          WHERE a.department_id = :department AND a.kind = 'escalation'
            AND i.status IN ('new', 'assigned')))
    """
)


async def next_overdue_boundary(
    session: AsyncSession, department: Department, now: datetime
) -> datetime | None:
    """When the next of the key's open inquiries becomes overdue: the list's tag changes then,
    though no row did. One statement over the key's scopes."""
    moment: datetime | None = await session.scalar(
        _BOUNDARY,
        {
            "departments": await _viewed_departments(session, department),
            "department": department.id,
            "now": now,
        },
    )
    return moment


@dataclass(frozen=True)
class Change:
    cursor: str
    reference: str
    version: int
    kind: str
    at: datetime


# Only changes of transactions older than every transaction still in flight: a transaction that
# began earlier and commits later can never have its change skipped by a cursor moved past it.
# Plain SQL: polled all day, it is built once, not per request.
_CHANGES = text(
    """
    SELECT c.id, c.kind, c.at, c.xact::text AS xact, i.reference
      FROM inquiry_change c
      JOIN inquiry i ON i.id = c.inquiry_id
     WHERE c.department_id = ANY(:departments)
       AND c.xact < pg_snapshot_xmin(pg_current_snapshot())
       AND (c.xact, c.id) > (CAST(:xact AS xid8), :id)
     ORDER BY c.xact, c.id
     LIMIT :limit
    """
)


async def _viewed_departments(session: AsyncSession, department: Department) -> list[int]:
    """Whose changes a key sees: its own department's; an office's, its region's too."""
    if not department.is_supervising_office:
        return [department.id]
    office, handler = aliased(Department), aliased(Department)
    region = await session.scalars(
        select(handler.id)
        .join(office, office.id == department.id)
        .where(office_encloses(office, handler))
    )
    return [department.id, *region]


async def changes(
    session: AsyncSession, department: Department, *, after: str | None, limit: int
) -> tuple[list[Change], str | None]:
    """What changed for this key, in transaction order; `left_view` when an inquiry left it."""
    xact_text, id_text = decode_cursor(after, 2) if after else ("0", "0")
    if not (xact_text.isdigit() and id_text.isdigit()):
        raise BadCursor("Pass back the `next` value of the previous answer, unchanged.")
    rows = await session.execute(
        _CHANGES,
        {
            "departments": await _viewed_departments(session, department),
            "xact": xact_text,
            "id": int(id_text),
            "limit": limit,
        },
    )
    found = [
        Change(encode_cursor(row.xact, str(row.id)), row.reference, row.id, row.kind, row.at)
        for row in rows
    ]
    return found, found[-1].cursor if found else after
