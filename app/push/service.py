"""Push registrations, and the sweep that turns a department's feed into notifications."""

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.departments.models import Department
from app.inquiries.models import AssignmentDecision, EventAction
from app.problems import Conflict, NotFound
from app.push.models import PushRegistration

SECRET_PREFIX = "gvp_"  # noqa: S105  # a prefix that names the secret's kind, not a secret
# The path a notified client polls; the feed, not the notification, is the source of truth.
FEED_PATH = "/api/v1/inquiries/changes"
DELIVERY_TASK = "deliver_push"
# A notification names at most this many changes; the rest go in the next minute's (the client
# polls the feed on the first one anyway).
BATCH = 100
# Written by migration 0018's triggers, beside the event actions and hand-over decisions.
LEFT_VIEW = "left_view"
ESCALATED_TO_YOU = "escalated_to_you"
# What a client that does not poll must hear about: new work (a hand-over to it, an inquiry or
# message on its inquiries), warnings, escalations, and work leaving its view. The rest (status,
# pauses, dues recomputed…) waits for its next poll of the feed.
NOTIFIED_KINDS: tuple[str, ...] = tuple(
    str(kind)
    for kind in (
        AssignmentDecision.routed,
        AssignmentDecision.rerouted,
        AssignmentDecision.transferred,
        AssignmentDecision.returned,
        AssignmentDecision.sent_to_arbitration,
        AssignmentDecision.arbitrated,
        AssignmentDecision.handed_back,
        EventAction.created,
        EventAction.message_appended,
        EventAction.deadline_warning,
        EventAction.escalated,
        EventAction.window_closing,
        EventAction.followed_up,
        EventAction.citizen_unfollowed,
        EventAction.callback_opened,
        EventAction.callback_overdue,
        ESCALATED_TO_YOU,
        LEFT_VIEW,
    )
)


class PushRegistrationNotFound(NotFound):
    title = "Push registration not found"
    slug = "push-registration-not-found"
    example_detail = "hefei-hrss has no push registration."


class PushRegistrationExists(Conflict):
    title = "Department already has a push registration"
    slug = "push-registration-exists"
    example_detail = "hefei-hrss has a push registration; delete it first to register another URL."


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def register(session: AsyncSession, department: Department, *, url: str) -> PushRegistration:
    """Register the department's webhook with a new secret; one per department."""
    existing = await session.scalar(
        select(PushRegistration.id).where(PushRegistration.department_id == department.id)
    )
    if existing is not None:
        raise PushRegistrationExists(
            f"{department.code} has a push registration; delete it first to register another URL."
        )
    registration = PushRegistration(department=department, url=url, secret=new_secret())
    session.add(registration)
    await session.flush()
    return registration


async def get(
    session: AsyncSession, department: Department, *, lock: bool = False
) -> PushRegistration:
    """The department's registration, with the department loaded."""
    statement = (
        select(PushRegistration)
        .where(PushRegistration.department_id == department.id)
        .options(joinedload(PushRegistration.department, innerjoin=True))
    )
    if lock:
        statement = statement.with_for_update(of=PushRegistration)
    registration = await session.scalar(statement)
    if registration is None:
        raise PushRegistrationNotFound(f"{department.code} has no push registration.")
    return registration


async def rotate_secret(session: AsyncSession, department: Department) -> PushRegistration:
    """Replace the signing secret; notifications from now on are signed with the new one."""
    registration = await get(session, department, lock=True)
    registration.secret = new_secret()
    await session.flush()
    return registration


async def unregister(session: AsyncSession, department: Department) -> PushRegistration:
    """Delete the registration; a notification already queued for it is dropped."""
    registration = await get(session, department, lock=True)
    await session.delete(registration)
    await session.flush()
    return registration


# Registrations with no notification queued or being delivered: one at a time per registration,
# so they arrive in order and a failing endpoint is not sent a new one while it is retried.
_IDLE = text(
    """
    SELECT r.id FROM push_registration r
     WHERE NOT EXISTS (
           SELECT 1 FROM procrastinate_jobs j
            WHERE j.task_name = :task AND j.status IN ('todo', 'doing')
              AND j.args ->> 'registration_id' = r.id::text)
     ORDER BY r.id
       FOR UPDATE OF r SKIP LOCKED
    """
)

# Its department's changes after its cursor, of transactions older than every one still in
# flight: a transaction that commits late has a smaller xact than changes already committed,
# so handing those out first and moving past them would skip it for ever.
_CHANGES = text(
    """
    SELECT c.id, c.xact::text AS xact, i.reference, c.kind
      FROM push_registration r
      JOIN inquiry_change c
        ON c.department_id = r.department_id AND (c.xact, c.id) > (r.cursor_xact, r.cursor_id)
      JOIN inquiry i ON i.id = c.inquiry_id
     WHERE r.id = :registration_id
       AND c.xact < pg_snapshot_xmin(pg_current_snapshot())
       AND c.kind = ANY(:kinds)
     ORDER BY c.xact, c.id
     LIMIT :batch
    """
)

_ADVANCE = text(
    "UPDATE push_registration SET cursor_xact = CAST(:xact AS xid8), cursor_id = :change_id"
    " WHERE id = :registration_id"
)

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('routing', :task, 0, NULL, NULL,"
    " CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)


def batch(rows: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """(reference, kind) rows in feed order -> one entry per reference, its kinds in order."""
    kinds: dict[str, list[str]] = {}
    for reference, kind in rows:
        seen = kinds.setdefault(reference, [])
        if kind not in seen:
            seen.append(kind)
    return [{"reference": reference, "kinds": names} for reference, names in kinds.items()]


async def queue_notifications(session: AsyncSession, *, limit: int = BATCH) -> int:
    """For each idle registration with changes that matter since its cursor, queue one delivery
    and move the cursor, both in this transaction. Returns how many were queued."""
    queued = 0
    for registration_id in (await session.scalars(_IDLE, {"task": DELIVERY_TASK})).all():
        rows = (
            await session.execute(
                _CHANGES,
                {"registration_id": registration_id, "kinds": list(NOTIFIED_KINDS), "batch": limit},
            )
        ).all()
        if not rows:
            continue
        last = rows[-1]
        await session.execute(
            _DEFER,
            {
                "task": DELIVERY_TASK,
                "args": json.dumps(
                    {
                        "registration_id": registration_id,
                        "changes": batch([(row.reference, row.kind) for row in rows]),
                    }
                ),
            },
        )
        await session.execute(
            _ADVANCE,
            {"xact": last.xact, "change_id": last.id, "registration_id": registration_id},
        )
        queued += 1
    return queued


@dataclass(frozen=True)
class Target:
    """Where and how one notification goes."""

    url: str
    secret: str
    department_code: str


async def target(session: AsyncSession, *, registration_id: int) -> Target | None:
    """The registration's URL, secret and department now; None once it was deleted."""
    row = (
        await session.execute(
            select(PushRegistration.url, PushRegistration.secret, Department.code)
            .join(Department, Department.id == PushRegistration.department_id)
            .where(PushRegistration.id == registration_id)
        )
    ).one_or_none()
    return None if row is None else Target(url=row[0], secret=row[1], department_code=row[2])


def notification(department_code: str, changes: list[dict[str, Any]]) -> dict[str, Any]:
    """The body: which references changed and how, never what was said. It means "poll now"."""
    return {"department": department_code, "changes": changes, "feed": FEED_PATH}


async def record_success(session: AsyncSession, *, registration_id: int, now: datetime) -> None:
    """A notification was accepted: any failure on record is cleared."""
    await session.execute(
        update(PushRegistration)
        .where(PushRegistration.id == registration_id)
        .values(last_success_at=now, last_failure_at=None, last_error=None, consecutive_failures=0)
    )


async def record_failure(
    session: AsyncSession, *, registration_id: int, error: str, now: datetime
) -> None:
    """A notification was given up on after every retry: the admin sees why."""
    await session.execute(
        update(PushRegistration)
        .where(PushRegistration.id == registration_id)
        .values(
            last_failure_at=now,
            last_error=error[:500],
            consecutive_failures=PushRegistration.consecutive_failures + 1,
        )
    )
