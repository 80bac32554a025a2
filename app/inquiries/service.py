from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.departments.models import Department
from app.inquiries.models import (
    ENDED_STATUSES,
    TRANSITIONS,
    EventAction,
    Inquiry,
    InquiryEvent,
    InquiryStatus,
)
from app.problems import Conflict, NotFound


class InquiryNotFound(NotFound):
    title = "Inquiry not found"
    slug = "inquiry-not-found"
    example_detail = "No inquiry WX20261124-000123 for this department."


class TransitionNotAllowed(Conflict):
    title = "Status change not allowed"
    slug = "transition-not-allowed"
    example_detail = (
        "An inquiry in status new cannot become closed; allowed: assigned, invalid, referred."
    )


def record(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    actor: str,
    action: EventAction,
    reason: str = "",
    person_id: int | None = None,
    from_status: InquiryStatus | None = None,
    to_status: InquiryStatus | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append an audit event; every change to an inquiry goes through here."""
    session.add(
        InquiryEvent(
            inquiry_id=inquiry.id,
            actor=actor,
            person_id=person_id,
            action=action,
            reason=reason,
            from_status=from_status,
            to_status=to_status,
            details=details or {},
        )
    )


def visible_to(department: Department) -> Select[Inquiry]:
    """Inquiries a department may read: its own. Every department query starts here."""
    return select(Inquiry).where(Inquiry.department_id == department.id)


async def get_for_department(
    session: AsyncSession, department: Department, *, reference: str, for_update: bool = False
) -> Inquiry:
    """One inquiry of `department`; another department's is 404, so its existence does not leak."""
    statement = (
        visible_to(department)
        .where(Inquiry.reference == reference)
        .options(joinedload(Inquiry.account), selectinload(Inquiry.messages))
    )
    if for_update:
        statement = statement.with_for_update(of=Inquiry)
    inquiry = await session.scalar(statement)
    if inquiry is None:
        raise InquiryNotFound(f"No inquiry {reference} for this department.")
    return inquiry


def check_transition(current: InquiryStatus, target: InquiryStatus) -> None:
    """Raise unless TRANSITIONS allows `current` → `target`."""
    allowed = TRANSITIONS[current]
    if target not in allowed:
        names = ", ".join(sorted(allowed)) or "none (it has ended)"
        raise TransitionNotAllowed(
            f"An inquiry in status {current} cannot become {target}; allowed: {names}.",
            current_status=current.value,
            allowed=sorted(status.value for status in allowed),
        )


def transition(
    session: AsyncSession,
    inquiry: Inquiry,
    target: InquiryStatus,
    *,
    actor: str,
    reason: str,
    person_id: int | None = None,
) -> None:
    """Move an inquiry to `target` if the table allows it, and audit the change."""
    check_transition(inquiry.status, target)
    previous = inquiry.status
    inquiry.status = target
    if target in ENDED_STATUSES:
        inquiry.accepts_messages = False  # the citizen's next message opens a new inquiry
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.status_changed,
        reason=reason,
        person_id=person_id,
        from_status=previous,
        to_status=target,
    )


async def events(session: AsyncSession, inquiry: Inquiry) -> list[InquiryEvent]:
    """An inquiry's audit trail, oldest first."""
    return list(
        await session.scalars(
            select(InquiryEvent)
            .where(InquiryEvent.inquiry_id == inquiry.id)
            .order_by(InquiryEvent.id)
        )
    )
