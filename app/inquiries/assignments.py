"""Who holds an inquiry: the hand-over history as first-class state (never read from audit
events). Every change of holder goes through `assign`."""

from datetime import datetime

from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.base import NO_VALUE

from app.departments.models import Department
from app.inquiries.models import AssignmentDecision, Inquiry, InquiryAssignment
from app.problems import Conflict
from app.replies.service import withdraw_pending


class InactiveHolder(Conflict):
    title = "Department is deactivated"
    slug = "inactive-holder"
    example_detail = "hefei-hrss is deactivated and cannot take inquiries."


async def current(session: AsyncSession, inquiry: Inquiry) -> InquiryAssignment | None:
    return await session.scalar(
        select(InquiryAssignment).where(
            InquiryAssignment.inquiry_id == inquiry.id, InquiryAssignment.until.is_(None)
        )
    )


async def assign(
    session: AsyncSession,
    inquiry: Inquiry,
    department: Department,
    *,
    at: datetime,
    decision: AssignmentDecision,
    reason: str,
    actor: str,
    person_id: int | None = None,
    disclaims: bool = False,
) -> InquiryAssignment:
    """Hand the inquiry to `department`: the current assignment ends, a new one begins, and the
    inquiry's department_id follows. The caller holds the inquiry's row lock; the department's
    row is share-locked here, so a deactivation running at the same time waits for this hand-over
    (and then hands the inquiry on), or this one sees it and refuses."""
    active = await session.scalar(
        select(Department.active)
        .where(Department.id == department.id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    if not active:
        raise InactiveHolder(f"{department.code} is deactivated and cannot take inquiries.")
    previous = await current(session, inquiry)
    if previous is not None:
        previous.until = at
        await session.flush()  # one current row at a time (uq_inquiry_assignment_current)
        # A reply awaiting the old holder's reviewer is not the new holder's to send.
        await withdraw_pending(
            session, inquiry, why=f"the inquiry went to {department.code}", now=at, actor=actor
        )
    row = InquiryAssignment(
        inquiry_id=inquiry.id,
        department=department,
        department_id=department.id,
        since=at,
        decision=decision,
        disclaims=disclaims,
        from_department_id=previous.department_id if previous else None,
        decided_by=actor,
        person_id=person_id,
        reason=reason,
    )
    session.add(row)
    inquiry.department_id = department.id
    await session.flush()
    if inspect(inquiry).attrs.assignments.loaded_value is not NO_VALUE:
        inquiry.assignments.append(row)  # keep a loaded history (the API's answer) current
    return row


async def disclaimers(session: AsyncSession, inquiry: Inquiry) -> int:
    """How many times a holder has said "not ours" (recorded on each hand-over as it happened)."""
    count = await session.scalar(
        select(func.count()).where(
            InquiryAssignment.inquiry_id == inquiry.id, InquiryAssignment.disclaims
        )
    )
    return count or 0
