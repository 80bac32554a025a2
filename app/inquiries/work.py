"""A department's work: the list of its inquiries (keyset pages by due time, no count) and the
change feed (in transaction order, never skipping a late commit). Polling clients live here, so
each answer is one indexed query."""

import base64
import binascii
import enum
import functools
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Row, TextualSelect, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.departments.models import Department
from app.departments.service import office_encloses
from app.inquiries.models import Channel, InquiryKind, InquiryStatus
from app.problems import Problem


class BadCursor(Problem):
    status = 422
    title = "Unreadable cursor"
    slug = "bad-cursor"
    example_detail = "Pass back the `next` value of the previous answer, unchanged."


class Delivery(enum.StrEnum):
    """Deliveries a department must look at: refused, waiting for the window, or uncertain."""

    failed = "failed"
    awaiting_window = "awaiting_window"
    uncertain = "uncertain"


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
    unsigned: bool | None = None  # 签收 not yet by a person of the holder
    sign_overdue: bool | None = None  # unsigned longer than SIGN_FOR_WITHIN_OFFICE_HOURS
    delivery: Delivery | None = None  # a reply's delivery to the inquiry's citizen in this state


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


# The list is one plain SQL statement per combination of filters, built from the fixed fragments
# below and cached: polled all day, building a SQLAlchemy expression per request cost more than
# running it (bench/poll.py). Values are always bound parameters; only the enum literals that
# decide which partial index serves the query are written into the text.
_OPEN = "('new', 'assigned')"  # the statuses whose clocks run (alerts.OPEN)
_OPEN_WORK = "('new', 'assigned', 'replied')"  # the list's default: ix_inquiry_department_work
_RUNNING = (
    "EXISTS (SELECT 1 FROM deadline_pause p WHERE p.inquiry_id = i.id AND p.status = 'running')"
)
# The same conditions as alerts.breached, on the row itself: past the reply due, its clock
# running; or past the first-response due, not yet met.
# (NOT IN, one hashed set of the running pauses, not NOT EXISTS: PostgreSQL makes that an
# anti-join over every late row of the department and sorts them, where an ordered index scan
# stops after one page. inquiry_id is never NULL, so the two mean the same.)
_NOT_RUNNING = "i.id NOT IN (SELECT p.inquiry_id FROM deadline_pause p WHERE p.status = 'running')"
_REPLY_LATE = f"i.reply_due_at < :now AND {_NOT_RUNNING}"
_FIRST_LATE = "i.first_response_due_at < :now AND i.first_responded_at IS NULL"
_LATE = f"(i.status IN {_OPEN} AND (({_REPLY_LATE}) OR ({_FIRST_LATE})))"
_AWAITING = {
    Awaiting.arbitration: "i.arbitration_office_id IS NOT NULL AND i.arbitrated_at IS NULL",
    Awaiting.extension: "EXISTS (SELECT 1 FROM deadline_extension x"
    " WHERE x.inquiry_id = i.id AND x.status = 'requested')",
    Awaiting.pause: "EXISTS (SELECT 1 FROM deadline_pause p"
    " WHERE p.inquiry_id = i.id AND p.status = 'requested')",
}
# 签收: the current holder's assignment is not signed for (for too long: before :sign_cutoff).
_UNSIGNED = (
    "EXISTS (SELECT 1 FROM inquiry_assignment s"
    " WHERE s.inquiry_id = i.id AND s.until IS NULL AND s.signed_at IS NULL)"
)
_SIGN_LATE = f"""i.status IN {_OPEN} AND EXISTS (SELECT 1 FROM inquiry_assignment s
     WHERE s.inquiry_id = i.id AND s.until IS NULL AND s.signed_at IS NULL
       AND s.since < :sign_cutoff)"""  # noqa: S608 (constant fragments)
# A delivery of a reply to the inquiry's own citizen in that state now.
_DELIVERY_IS = "EXISTS (SELECT 1 FROM delivery v WHERE v.inquiry_id = i.id AND v.status = "
_DELIVERY = {
    Delivery.failed: _DELIVERY_IS + "'failed')",
    Delivery.awaiting_window: _DELIVERY_IS + "'awaiting_window')",
    Delivery.uncertain: _DELIVERY_IS + "'uncertain')",
}
# What a key may read, each scope its own indexed, ordered, limited branch (one OR of them would
# make the planner scan every inquiry): its own; an office's region; what was escalated to it.
_OWN = "i.department_id = :department"
_REGION = "i.department_id = ANY(:region)"
# A few ids: probed one by one on the primary key, never a scan of every department's work.
_ESCALATED = "i.id = ANY(ARRAY(SELECT inquiry_id FROM escalated))"
# Computed once per statement, over ix_deadline_alert_escalated.
_ESCALATIONS = """escalated AS MATERIALIZED (
    SELECT DISTINCT a.inquiry_id FROM deadline_alert a
     WHERE a.department_id = :department AND a.kind = 'escalation')"""


def _boundary(departments: str) -> str:
    """When the next of the key's open inquiries becomes overdue: the list's tag changes then,
    though no row did. Each minimum over its own partial index (ix_inquiry_department_open_due,
    ix_inquiry_department_first_response; one department's minimum is one index probe);
    escalated inquiries are few."""
    return f"""least(
        (SELECT min(reply_due_at) FROM inquiry
          WHERE department_id {departments} AND status IN {_OPEN} AND reply_due_at > :now),
        (SELECT min(first_response_due_at) FROM inquiry
          WHERE department_id {departments} AND status IN {_OPEN}
            AND first_responded_at IS NULL AND first_response_due_at > :now),
        (SELECT min(least(CASE WHEN e.reply_due_at > :now THEN e.reply_due_at END,
                          CASE WHEN e.first_responded_at IS NULL
                                AND e.first_response_due_at > :now
                               THEN e.first_response_due_at END))
           FROM escalated x JOIN inquiry e ON e.id = x.inquiry_id
          WHERE e.status IN {_OPEN}))"""  # noqa: S608 (constant fragments)


class Phase(enum.StrEnum):
    """Where a keyset page starts: at the top; after a row with a due time (the rest of those,
    then every row without one); in the tail of rows without a due time."""

    first = "first"
    dated = "d"
    undated = "n"


def _conditions(filters: Filters) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The filters as SQL: conditions every row meets, and alternatives of which it meets one
    (each alternative is its own branch, so each is served by its own index in order)."""
    alternatives: tuple[str, ...] = ("true",)
    # One status condition, never two: PostgreSQL multiplies their selectivities, expects a
    # handful of rows and sorts every late one instead of reading one page in index order.
    if filters.overdue:
        alternatives = (_REPLY_LATE, _FIRST_LATE)
        if filters.status is None:
            status = f"i.status IN {_OPEN}"
        elif filters.status in (InquiryStatus.new, InquiryStatus.assigned):
            status = f"i.status = '{filters.status.value}'"
        else:
            status = "false"  # only open inquiries can be overdue
    elif filters.status is not None:
        status = f"i.status = '{filters.status.value}'"
    else:
        status = f"i.status IN {_OPEN_WORK}"
    conditions = [status]
    if filters.kind is not None:
        conditions.append("i.kind = :kind")
    if filters.channel is not None:
        conditions.append("i.channel = :channel")
    if filters.urgent is not None:
        conditions.append("i.urgent = :urgent")
    if filters.provisional is not None:
        conditions.append("i.due_provisional = :provisional")
    if filters.due_before is not None:
        conditions.append("i.reply_due_at < :due_before")
    if filters.overdue is False:
        conditions.append(f"{_LATE} IS NOT TRUE")
    if filters.paused is not None:
        conditions.append(_RUNNING if filters.paused else _NOT_RUNNING)
    if filters.fallback is not None:
        conditions.append(
            "i.routed_at IS NOT NULL AND i.routing_rule_id IS NULL"
            if filters.fallback
            else "i.routing_rule_id IS NOT NULL"
        )
    if filters.awaiting is not None:
        conditions.append(_AWAITING[filters.awaiting])
    if filters.holder is not None:
        conditions.append(
            "i.department_id = (SELECT h.id FROM department h WHERE h.code = :holder)"
        )
    if filters.unsigned is not None:
        conditions.append(_UNSIGNED if filters.unsigned else f"NOT {_UNSIGNED}")
    if filters.sign_overdue is not None:
        conditions.append(_SIGN_LATE if filters.sign_overdue else f"({_SIGN_LATE}) IS NOT TRUE")
    if filters.delivery is not None:
        conditions.append(_DELIVERY[filters.delivery])
    if filters.text:
        # A substring match, so two-character terms such as 社保 match (trigram indexes need
        # three); it runs over the messages of the key's own inquiries only.
        conditions.append(
            "EXISTS (SELECT 1 FROM inquiry_message m"
            " WHERE m.inquiry_id = i.id AND m.content LIKE :pattern ESCAPE '\\')"
        )
    return tuple(conditions), alternatives


def _branch(scope: str, where: str, keyset: str, order: str) -> str:
    return f"""(SELECT i.id, i.reply_due_at FROM inquiry i
                 WHERE {scope} AND {where} AND {keyset} ORDER BY {order} LIMIT :more)"""  # noqa: S608


@functools.lru_cache(maxsize=512)
def _statement(
    conditions: tuple[str, ...], alternatives: tuple[str, ...], phase: Phase, office: bool
) -> TextualSelect:
    branches = []
    for scope, alternative in itertools.product(
        (_OWN, _REGION, _ESCALATED) if office else (_OWN, _ESCALATED), alternatives
    ):
        where = " AND ".join((*conditions, alternative))
        if phase is not Phase.undated:
            keyset = " AND (i.reply_due_at, i.id) > (:after_due, :after_id)"
            dated = f"i.reply_due_at IS NOT NULL{keyset if phase is Phase.dated else ''}"
            branches.append(_branch(scope, where, dated, "i.reply_due_at, i.id"))
        undated = (
            f"i.reply_due_at IS NULL{' AND i.id > :after_id' if phase is Phase.undated else ''}"
        )
        branches.append(_branch(scope, where, undated, "i.id"))
    union = "\n UNION\n ".join(branches)
    return text(
        f"""
        WITH {_ESCALATIONS}
        SELECT b.boundary, r.*
          FROM (SELECT {_boundary("= ANY(:departments)" if office else "= :department")}
                       AS boundary) b
          LEFT JOIN LATERAL (
            SELECT i.id, i.reference, i.kind, i.status, i.channel, d.code AS holder, i.urgent,
                   i.received_at, i.first_response_due_at, i.reply_due_at, i.due_provisional,
                   {_RUNNING} AS paused,
                   i.arbitration_office_id IS NOT NULL AND i.arbitrated_at IS NULL
                       AS awaiting_arbitration,
                   (SELECT coalesce(max(c.id), 0) FROM inquiry_change c
                     WHERE c.inquiry_id = i.id) AS version
              FROM (SELECT id, reply_due_at FROM ({union}) AS scoped
                     ORDER BY reply_due_at, id LIMIT :more) AS picked
              JOIN inquiry i ON i.id = picked.id
              LEFT JOIN department d ON d.id = i.department_id) r ON true
         ORDER BY r.reply_due_at, r.id
        """  # noqa: S608 (constant fragments; every value is a bound parameter)
    ).columns(
        boundary=DateTime(timezone=True),
        received_at=DateTime(timezone=True),
        first_response_due_at=DateTime(timezone=True),
        reply_due_at=DateTime(timezone=True),
    )


async def _region(session: AsyncSession, department: Department) -> list[int]:
    """The departments of an office's region (none for any other key)."""
    if not department.is_supervising_office:
        return []
    office, handler = aliased(Department), aliased(Department)
    return list(
        await session.scalars(
            select(handler.id)
            .join(office, office.id == department.id)
            .where(office_encloses(office, handler))
        )
    )


def _after(cursor: str | None) -> tuple[Phase, datetime | None, int]:
    """The cursor: the last row's due time (none: in the tail of rows without one) and id."""
    if not cursor:
        return Phase.first, None, 0
    phase, due_text, id_text = decode_cursor(cursor, 3)
    try:
        if phase == Phase.undated:
            return Phase.undated, None, int(id_text)
        if phase == Phase.dated:
            return Phase.dated, datetime.fromisoformat(due_text), int(id_text)
    except ValueError:
        pass
    raise BadCursor("Pass back the `next` value of the previous answer, unchanged.")


@dataclass(frozen=True)
class Page:
    rows: list[Row[Any]]  # each with the fields of schemas.InquiryItem
    next: str | None
    overdue_boundary: datetime | None  # when the next open inquiry in view becomes overdue


async def page(
    session: AsyncSession,
    department: Department,
    filters: Filters,
    *,
    now: datetime,
    cursor: str | None,
    limit: int,
    sign_cutoff: datetime | None = None,
) -> Page:
    """One keyset page by due time, then id (inquiries without a due time last, by id): a
    change meanwhile never repeats or skips a row. One statement: each scope's branches are
    ordered and limited by an index, and merged by the database."""
    phase, after_due, after_id = _after(cursor)
    region = await _region(session, department)
    parameters: dict[str, Any] = {
        "department": department.id,
        "region": region,
        "departments": [department.id, *region],
        "now": now,
        "after_due": after_due,
        "after_id": after_id,
        "more": limit + 1,
        "kind": filters.kind and filters.kind.value,
        "channel": filters.channel and filters.channel.value,
        "urgent": filters.urgent,
        "provisional": filters.provisional,
        "due_before": filters.due_before,
        "holder": filters.holder,
        "sign_cutoff": sign_cutoff,
    }
    if filters.text:
        escaped = filters.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parameters["pattern"] = f"%{escaped}%"
    statement = _statement(*_conditions(filters), phase, department.is_supervising_office)
    result = (await session.execute(statement, parameters)).all()
    boundary: datetime | None = result[0].boundary
    rows = [row for row in result if row.id is not None]
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        following = (
            encode_cursor(Phase.undated, "", str(last.id))
            if last.reply_due_at is None
            else encode_cursor(Phase.dated, last.reply_due_at.isoformat(), str(last.id))
        )
    return Page(rows, following, boundary)


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
            "departments": [department.id, *await _region(session, department)],
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
