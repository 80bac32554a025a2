"""Extensions: more time, asked before the due time, at most once, no longer than the original
period (政府信息公开条例 art. 33 by analogy), decided by the holder's nearest supervising office."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.models import DeadlineExtension, DeadlinePause, ExtensionStatus, PauseStatus
from app.deadlines.pauses import NotYourOffice, deciding_office
from app.deadlines.service import recount
from app.departments.models import Department
from app.inquiries.models import ENDED_STATUSES, EventAction, Inquiry, InquiryStatus
from app.inquiries.service import check_version, lock, record
from app.problems import Conflict

__all__ = ["ExtensionRefused", "NotYourOffice", "decide_extension", "request_extension"]


class ExtensionRefused(Conflict):
    title = "Extension not possible"
    slug = "extension-not-possible"
    example_detail = "An extension was asked for already; at most one per inquiry."


def _check_running(inquiry: Inquiry) -> None:
    if (
        inquiry.status in ENDED_STATUSES
        or inquiry.status is InquiryStatus.replied
        or inquiry.reply_due_at is None
    ):
        raise ExtensionRefused(f"{inquiry.reference} ({inquiry.status}) has no running deadline.")


async def request_extension(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    working_days: int,
    reason: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> DeadlineExtension:
    """Ask the supervising office for more time; the caller holds the inquiry's row lock."""
    _check_running(inquiry)
    assert inquiry.reply_due_at is not None
    stopped = await session.scalar(
        select(DeadlinePause.id).where(
            DeadlinePause.inquiry_id == inquiry.id, DeadlinePause.status == PauseStatus.running
        )
    )
    if now >= inquiry.reply_due_at and stopped is None:  # a stopped clock is not late
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
    office = await deciding_office(session, inquiry)
    extension = DeadlineExtension(
        inquiry_id=inquiry.id,
        office_id=office.id,
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
        details=details | {"working_days": working_days, "office": office.code},
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
    if_match: str | None = None,
) -> DeadlineExtension:
    """Approve or refuse under the inquiry's row lock; the due times are counted again from the
    facts (a pause that ended meanwhile included), so the original and the extended due time are
    both right."""
    inquiry = await lock(session, inquiry)
    # Who decides comes first: a key that may not decide learns nothing about what is pending.
    deciding = await deciding_office(session, inquiry)
    if deciding.id != office.id:
        raise NotYourOffice(f"{deciding.code} decides this for the holder.")
    await check_version(session, inquiry, if_match)
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
    _check_running(inquiry)
    extension.office_id = office.id
    extension.status = ExtensionStatus.approved if approve else ExtensionStatus.refused
    extension.decided_at, extension.decided_by, extension.decision_note = now, actor, note
    await session.flush()
    await recount(
        session,
        inquiry,
        actor=actor,
        action=EventAction.extension_decided,
        reason=note,
        person_id=person_id,
        details=details | {"approved": approve, "working_days": extension.working_days},
    )
    return extension
