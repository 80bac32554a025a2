"""Where an inquiry goes. Until routing rules exist, the decision is recorded as "no rule yet"."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.inquiries.models import EventAction, Inquiry, InquiryMessage
from app.inquiries.service import record

ROUTER = "system:router"
NO_RULE_YET = "no routing rule yet: left new until routing rules are configured"


def urgent_words(content: str, keywords: Sequence[str]) -> list[str]:
    """The life-and-safety keywords found in a message."""
    return [word for word in keywords if word and word in content]


def _flag_if_urgent(
    session: AsyncSession, inquiry: Inquiry, message: InquiryMessage, keywords: Sequence[str]
) -> None:
    found = urgent_words(message.content, keywords)
    if found and not inquiry.urgent:
        inquiry.urgent = True
        record(
            session,
            inquiry,
            actor=ROUTER,
            action=EventAction.flagged_urgent,
            reason=f"life-and-safety words in message {message.seq}: {'、'.join(found)}",
            details={"seq": message.seq, "keywords": found},
        )


async def route(
    session: AsyncSession, *, inquiry_id: int, now: datetime, keywords: Sequence[str]
) -> bool:
    """Decide an unrouted inquiry once; False if it was routed already."""
    # Wait for the lock (an intake appending a message holds it for milliseconds); skipping it
    # would let the job succeed without deciding anything.
    inquiry = await session.scalar(
        select(Inquiry)
        .where(Inquiry.id == inquiry_id, Inquiry.routed_at.is_(None))
        .with_for_update()
    )
    if inquiry is None:
        return False
    first = await session.scalar(
        select(InquiryMessage).where(
            InquiryMessage.inquiry_id == inquiry.id, InquiryMessage.seq == 1
        )
    )
    if first is not None:
        _flag_if_urgent(session, inquiry, first, keywords)
    inquiry.routed_at = now
    inquiry.routing_explanation = NO_RULE_YET
    record(session, inquiry, actor=ROUTER, action=EventAction.routed, reason=NO_RULE_YET)
    return True


async def check_urgent(
    session: AsyncSession, *, inquiry_id: int, seq: int, keywords: Sequence[str]
) -> bool:
    """Flag an inquiry urgent if a later message carries life-and-safety words."""
    inquiry = await session.scalar(
        select(Inquiry).where(Inquiry.id == inquiry_id).with_for_update()
    )
    message = await session.scalar(
        select(InquiryMessage).where(
            InquiryMessage.inquiry_id == inquiry_id, InquiryMessage.seq == seq
        )
    )
    if inquiry is None or message is None or inquiry.urgent:
        return False
    _flag_if_urgent(session, inquiry, message, keywords)
    return inquiry.urgent


_REQUEUE = text(
    """
    SELECT coalesce(cardinality(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW('routing', 'route_inquiry', 0, NULL, NULL,
                   jsonb_build_object('inquiry_id', i.id), NULL)::procrastinate_job_to_defer_v1
          FROM inquiry i
         WHERE i.routed_at IS NULL AND i.created_at < :cutoff
           AND NOT EXISTS (
               SELECT 1 FROM procrastinate_jobs j
                WHERE j.task_name = 'route_inquiry' AND j.status IN ('todo', 'doing')
                  AND j.args ->> 'inquiry_id' = i.id::text)
         ORDER BY i.id
         LIMIT :batch
    ))), 0)
    """
)


async def requeue_unrouted(
    session: AsyncSession, *, now: datetime, grace: timedelta, batch: int = 500
) -> int:
    """Queue routing again for inquiries left without a decision (a lost or failed job)."""
    count = await session.scalar(_REQUEUE, {"cutoff": now - grace, "batch": batch})
    return int(count or 0)


async def unrouted_count(session: AsyncSession) -> int:
    """Inquiries still waiting for a routing decision."""
    return int(await session.scalar(select(func.count()).where(Inquiry.routed_at.is_(None))) or 0)
