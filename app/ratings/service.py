"""Ratings and call-backs (回访), after the answer (issue 16). Intake records the digits; this
module tells the department, opens a call-back for a bad rating with its own deadline, reminds
once, and records the call-back's outcome, after which the citizen may rate again."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines import store
from app.deadlines.calendar import due_in_working_days
from app.delivery import service as outbox
from app.inquiries.models import EventAction, Inquiry
from app.inquiries.service import lock, record
from app.problems import Conflict, NotFound
from app.ratings.models import Callback, CallbackStatus, Rating
from app.settings import settings

ACTOR = "system:ratings"


async def received(session: AsyncSession, rating_id: int, *, now: datetime) -> Callback | None:
    """A rating intake recorded: an event on the inquiry (feed, push), and for a bad one a
    call-back task, once. Returns the call-back opened, if any."""
    rating = await session.get_one(Rating, rating_id)
    inquiry = await lock(session, await session.get_one(Inquiry, rating.inquiry_id))
    if rating.noticed_at is not None:
        return None  # the job ran before (a retry)
    rating.noticed_at = now
    record(
        session,
        inquiry,
        actor=ACTOR,
        action=EventAction.rated,
        reason=_words(rating),
        details={
            "rating_id": rating.id,
            "solved": rating.solved,
            "satisfaction": rating.satisfaction,
        },
    )
    if not rating.bad:
        await session.flush()
        return None
    calendar = await store.load(session)
    due, _ = due_in_working_days(rating.rated_at, settings().callback_working_days, calendar)
    callback = Callback(
        inquiry_id=inquiry.id,
        rating_id=rating.id,
        department_id=inquiry.department_id,
        due_at=due,
        status=CallbackStatus.open,
    )
    session.add(callback)
    await session.flush()
    record(
        session,
        inquiry,
        actor=ACTOR,
        action=EventAction.callback_opened,
        reason=f"a bad rating ({_words(rating)}): call the citizen back by {due.isoformat()}",
        details={"callback_id": callback.id, "rating_id": rating.id},
    )
    await session.flush()
    return callback


_SATISFACTION = {1: "非常满意", 2: "满意", 3: "基本满意", 4: "不满意", 5: "非常不满意"}


def _words(rating: Rating) -> str:
    solved = {True: "已解决", False: "未解决", None: ""}[rating.solved]
    return "，".join(part for part in (solved, _SATISFACTION[rating.satisfaction]) if part)


class CallbackNotFound(NotFound):
    title = "Call-back not found"
    slug = "callback-not-found"
    example_detail = "No call-back 7 on WX20261124-000123."


class CallbackDone(Conflict):
    title = "Call-back already recorded"
    slug = "callback-done"
    example_detail = "Call-back 7 was recorded on 2026-11-30T02:00:00Z."


async def record_outcome(
    session: AsyncSession,
    inquiry: Inquiry,
    callback_id: int,
    *,
    outcome: str,
    reached: bool,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Callback:
    """The department called back: what came of it. Reached, the citizen is asked to rate
    again (a new prompt, a new reminder)."""
    callback = await session.scalar(
        select(Callback)
        .where(Callback.id == callback_id, Callback.inquiry_id == inquiry.id)
        .with_for_update()
    )
    if callback is None:
        raise CallbackNotFound(f"No call-back {callback_id} on {inquiry.reference}.")
    if callback.status is CallbackStatus.done:
        raise CallbackDone(
            f"Call-back {callback.id} was recorded on {callback.done_at}.",
        )
    callback.status, callback.reached, callback.outcome = CallbackStatus.done, reached, outcome
    callback.done_at, callback.done_by, callback.person_id = now, actor, person_id
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.callback_done,
        reason=outcome,
        details=details | {"callback_id": callback.id, "reached": reached},
    )
    if reached:
        await outbox.prompt_rating(session, inquiry, now=now)
    await session.flush()
    return callback


async def listing(
    session: AsyncSession, department_id: int, *, status: CallbackStatus, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """The department's call-backs of one status, the earliest due first."""
    rows = await session.execute(
        select(Callback, Inquiry.reference, Rating)
        .join(Inquiry, Inquiry.id == Callback.inquiry_id)
        .join(Rating, Rating.id == Callback.rating_id)
        .where(Callback.department_id == department_id, Callback.status == status)
        .order_by(Callback.due_at, Callback.id)
        .limit(limit)
    )
    return [
        {
            "id": callback.id,
            "reference": reference,
            "status": callback.status.value,
            "due_at": callback.due_at,
            "overdue": callback.status is CallbackStatus.open and callback.due_at < now,
            "solved": rating.solved,
            "satisfaction": rating.satisfaction,
            "rated_at": rating.rated_at,
            "done_at": callback.done_at,
        }
        for callback, reference, rating in rows
    ]


# Prompts three days old (RATING_REMINDER_DAYS) still unanswered, not yet reminded, and still
# inside the rating window.
_UNRATED = text(
    """
    SELECT i.id FROM inquiry i
     WHERE i.rating_prompted_at <= :remind_before AND i.rating_prompted_at > :window_start
       AND i.rating_reminded_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM rating r
                        WHERE r.inquiry_id = i.id AND r.rated_at >= i.rating_prompted_at)
     ORDER BY i.id
     LIMIT 500
    """
)


async def remind(session: AsyncSession, *, now: datetime) -> int:
    """One reminder per prompt, RATING_REMINDER_DAYS after it, while the prompt still counts."""
    config = settings()
    ids = list(
        await session.scalars(
            _UNRATED,
            {
                "remind_before": now - timedelta(days=config.rating_reminder_days),
                "window_start": now - timedelta(days=config.rating_window_days),
            },
        )
    )
    reminded = 0
    for inquiry_id in ids:
        inquiry = await lock(session, await session.get_one(Inquiry, inquiry_id))
        rated = await session.scalar(
            select(
                exists().where(
                    Rating.inquiry_id == inquiry.id,
                    Rating.rated_at >= inquiry.rating_prompted_at,
                )
            )
        )
        if rated or inquiry.rating_reminded_at is not None:
            continue
        await outbox.prompt_rating(session, inquiry, now=now, reminder=True)
        reminded += 1
    return reminded


async def overdue(session: AsyncSession, *, now: datetime) -> int:
    """Open call-backs past their due with no outcome: a `callback_overdue` event on the
    inquiry (the department's feed and push; the supervising office reads it there), once each.
    Returns how many."""
    ids = list(
        await session.scalars(
            select(Callback.inquiry_id)
            .where(
                Callback.status == CallbackStatus.open,
                Callback.due_at < now,
                Callback.overdue_noticed_at.is_(None),
            )
            .order_by(Callback.inquiry_id)
            .distinct()
            .limit(500)
        )
    )
    told = 0
    for inquiry_id in ids:
        inquiry = await lock(session, await session.get_one(Inquiry, inquiry_id))
        late = await session.scalars(
            select(Callback)
            .where(
                Callback.inquiry_id == inquiry.id,
                Callback.status == CallbackStatus.open,
                Callback.due_at < now,
                Callback.overdue_noticed_at.is_(None),
            )
            .order_by(Callback.id)
            .with_for_update()
        )
        for callback in late:
            callback.overdue_noticed_at = now
            record(
                session,
                inquiry,
                actor=ACTOR,
                action=EventAction.callback_overdue,
                reason=f"the call-back was due {callback.due_at.isoformat()}: call the citizen "
                "back and record the outcome",
                details={"callback_id": callback.id, "due_at": callback.due_at.isoformat()},
            )
            told += 1
    await session.flush()
    return told
