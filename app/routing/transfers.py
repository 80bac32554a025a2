"""Returns (退单), transfers and arbitration: an inquiry a department should not have got goes
back to the dispatcher (the account's owning department); after two returns, or once two
departments have each disclaimed it, the supervising office decides, and its decision binds.
A transfer never restarts the citizen's clock."""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.deadlines import store as calendar
from app.deadlines.calendar import CHINA, due_in_working_days
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries.models import EventAction, Inquiry, InquiryEvent, InquiryStatus, ReturnReason
from app.inquiries.service import record
from app.problems import Conflict, Problem
from app.referrals import service as referrals
from app.referrals.models import ReferralEntry

MAX_RETURNS = 2
RETURN_WINDOW_WORKING_DAYS = 1


async def received_by(session: AsyncSession, inquiry: Inquiry, holder: Department) -> datetime:
    """When `holder` got the inquiry: the last routing, transfer, return or arbitration to it."""
    events = await session.scalars(
        select(InquiryEvent)
        .where(
            InquiryEvent.inquiry_id == inquiry.id,
            InquiryEvent.action.in_(
                [
                    EventAction.routed,
                    EventAction.transferred,
                    EventAction.returned,
                    EventAction.arbitrated,
                ]
            ),
        )
        .order_by(InquiryEvent.id.desc())
    )
    for event in events:
        target = {
            EventAction.routed: "department",
            EventAction.transferred: "to",
            EventAction.returned: "to",
            EventAction.arbitrated: "decision",
        }[event.action]
        if event.details.get(target) == holder.code:
            return event.at
    return inquiry.received_at


class CannotReturn(Conflict):
    title = "Inquiry cannot be returned"
    slug = "cannot-return"
    example_detail = "The supervising office has decided who handles it; its decision binds."


class NotUnderArbitration(Conflict):
    title = "Inquiry is not awaiting your arbitration"
    slug = "not-under-arbitration"
    example_detail = "Only the office it was sent to decides, once."


class InvalidTransferTarget(Problem):
    status = 422
    title = "Invalid transfer target"
    slug = "invalid-transfer-target"
    example_detail = "hefei-hrss already holds this inquiry."


async def dispatcher(session: AsyncSession, inquiry: Inquiry) -> Department:
    """The account's owning department: it dispatched the inquiry and gets returns."""
    department = await session.scalar(
        select(Department)
        .join(Account, Account.department_id == Department.id)
        .where(Account.id == inquiry.account_id)
    )
    assert department is not None  # foreign keys
    return department


def ensure_free(inquiry: Inquiry) -> None:
    """Refuse a change of hands while an office arbitrates, or once its decision binds."""
    if inquiry.arbitrated_at is not None:
        raise CannotReturn("The supervising office has decided who handles it; its decision binds.")
    if inquiry.awaiting_arbitration:
        raise CannotReturn("This inquiry awaits arbitration: the office decides, with /arbitrate.")


async def _arbitrator(session: AsyncSession, holder: Department, origin: Department) -> Department:
    """The nearest office above both the returning department and the dispatcher."""
    above_origin = {origin.id} | {
        o.id for o in await departments.enclosing_offices(session, origin)
    }
    for office in await departments.enclosing_offices(session, holder):
        if office.id in above_origin:
            return office
    raise CannotReturn(
        f"No supervising office is registered above both {holder.code} and {origin.code}; "
        "the administrator registers one, then the inquiry can be returned."
    )


async def return_inquiry(
    session: AsyncSession,
    inquiry: Inquiry,
    holder: Department,
    *,
    reason: ReturnReason,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Department:
    """Give the inquiry back; returns the department that holds it now."""
    if inquiry.status is not InquiryStatus.assigned:
        raise CannotReturn(
            f"Only an assigned inquiry can be returned; this one is {inquiry.status}."
        )
    ensure_free(inquiry)
    origin = await dispatcher(session, inquiry)
    if holder.id == origin.id:
        raise CannotReturn("The dispatcher cannot return to itself: transfer it, or refer it out.")
    # 退单 only within 1 working day of the department's receipt (the rules' §3.4 proposal).
    got_it = await received_by(session, inquiry, holder)
    window_end, _ = due_in_working_days(
        got_it, RETURN_WINDOW_WORKING_DAYS, await calendar.load(session)
    )
    if now > window_end:
        raise CannotReturn(
            f"The return window closed at {window_end.astimezone(CHINA):%Y-%m-%d %H:%M} "
            "(1 working day after receipt): transfer it, or refer it out."
        )
    earlier = await session.scalar(
        select(func.count()).where(
            InquiryEvent.inquiry_id == inquiry.id, InquiryEvent.action == EventAction.returned
        )
    )
    # Two returns means two departments have disclaimed it, or one has twice: the office decides.
    to_office = (earlier or 0) + 1 >= MAX_RETURNS
    goes_to = await _arbitrator(session, holder, origin) if to_office else origin
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.returned,
        reason=note,
        person_id=person_id,
        details=details | {"reason": reason.value, "department": holder.code, "to": goes_to.code},
    )
    inquiry.department_id = goes_to.id
    if to_office:
        inquiry.arbitration_office_id = goes_to.id
        record(
            session,
            inquiry,
            actor="system:router",
            action=EventAction.sent_to_arbitration,
            reason=f"returned {MAX_RETURNS} times: {goes_to.code} decides who handles it",
            details={"office": goes_to.code},
        )
    await session.flush()
    return goes_to


async def transfer(
    session: AsyncSession,
    inquiry: Inquiry,
    holder: Department,
    target: Department,
    *,
    note: str,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """Hand the inquiry to another department; the citizen's due time does not change."""
    if inquiry.status is not InquiryStatus.assigned:
        raise CannotReturn(
            f"Only an assigned inquiry can be transferred; this one is {inquiry.status}."
        )
    ensure_free(inquiry)
    if target.id == holder.id or not target.active:
        raise InvalidTransferTarget(
            f"{target.code} cannot take it (it holds it already, or is inactive)."
        )
    inquiry.department_id = target.id
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.transferred,
        reason=note,
        person_id=person_id,
        details=details | {"from": holder.code, "to": target.code},
    )
    await session.flush()


async def arbitrate(
    session: AsyncSession,
    inquiry: Inquiry,
    office: Department,
    *,
    target: Department | None,
    entry: ReferralEntry | None,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """The supervising office's binding decision: a department handles it, or it is referred."""
    if (
        inquiry.arbitration_office_id != office.id
        or inquiry.arbitrated_at is not None
        or inquiry.status is not InquiryStatus.assigned
    ):
        raise NotUnderArbitration("Only the office it was sent to decides, once.")
    if (target is None) == (entry is None) or (target is not None and not target.active):
        raise InvalidTransferTarget("Name one active department, or one referral entry.")
    if entry is not None:
        referrals.usable(entry)
    inquiry.arbitrated_at = now
    decided = target.code if target is not None else entry.code if entry is not None else "?"
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.arbitrated,
        reason=note,
        person_id=person_id,
        details=details | {"decision": decided},
    )
    if entry is not None:
        await referrals.refer(session, inquiry, entry, actor=actor, person_id=person_id)
    elif target is not None:
        inquiry.department_id = target.id
        await session.flush()
