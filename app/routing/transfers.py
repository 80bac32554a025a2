"""Returns (退单), transfers and arbitration: an inquiry a department should not have got goes
back to the dispatcher (the account's owning department); after two returns, or once two
departments have each disclaimed it, the supervising office decides, and its decision binds.
A transfer never restarts the citizen's clock."""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.deadlines import pauses
from app.deadlines import store as calendar
from app.deadlines.calendar import CHINA, due_in_working_days
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries import assignments
from app.inquiries.models import (
    ENDED_STATUSES,
    AssignmentDecision,
    EventAction,
    Inquiry,
    InquiryStatus,
    ReturnReason,
)
from app.inquiries.service import record
from app.problems import Conflict, Problem
from app.referrals import service as referrals
from app.referrals.models import ReferralEntry

MAX_DISCLAIMERS = 2  # returns and transfers together
RETURN_WINDOW_WORKING_DAYS = 1


async def received_by(session: AsyncSession, inquiry: Inquiry, holder: Department) -> datetime:
    """When `holder` got the inquiry: the start of its current assignment."""
    held = await assignments.current(session, inquiry)
    if held is not None and held.department_id == holder.id:
        return held.since
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
    """The account's owning department: it dispatched the inquiry and gets returns (once it is
    deactivated, the nearest active office above it)."""
    department = await session.scalar(
        select(Department)
        .join(Account, Account.department_id == Department.id)
        .where(Account.id == inquiry.account_id)
    )
    assert department is not None  # foreign keys
    return await departments.standing_in_for(session, department)


class WorkWithoutAHome(Conflict):
    title = "Open work has nowhere to go"
    slug = "open-work-has-nowhere-to-go"
    example_detail = "hefei-hrss holds 3 open inquiries and no active office stands above it."


async def hand_back_work(
    session: AsyncSession, department: Department, *, now: datetime, actor: str
) -> int:
    """`department` was deactivated: each open inquiry it holds goes to its dispatcher (or, when
    the department was the dispatcher, the nearest active office), and inquiries awaiting its
    arbitration go to the next office up; pending decisions follow the new holder's office. In
    the caller's transaction, audited; returns how many inquiries moved."""
    held = list(
        await session.scalars(
            select(Inquiry)
            .where(
                or_(
                    and_(
                        Inquiry.department_id == department.id,
                        Inquiry.status.not_in(ENDED_STATUSES),  # replied ones still close
                    ),
                    and_(
                        Inquiry.arbitration_office_id == department.id,
                        Inquiry.arbitrated_at.is_(None),
                    ),
                )
            )
            .order_by(Inquiry.id)
            .with_for_update(key_share=True)
        )
    )
    for inquiry in held:
        goes_to = await dispatcher(session, inquiry)
        awaiting = inquiry.arbitration_office_id == department.id
        if awaiting:
            offices = await departments.enclosing_offices(session, department)
            if not offices:
                raise WorkWithoutAHome(
                    f"{inquiry.reference} awaits {department.code}'s arbitration and no active "
                    "office stands above it. Register one, then deactivate."
                )
            goes_to = offices[0]
        if not goes_to.active:
            raise WorkWithoutAHome(
                f"{inquiry.reference} has nowhere to go: no active office stands above "
                f"{department.code}. Register one, then deactivate."
            )
        why = f"{department.code} was deactivated: its work goes to {goes_to.code}"
        await assignments.assign(
            session,
            inquiry,
            goes_to,
            at=now,
            decision=AssignmentDecision.handed_back,
            reason=why,
            actor=actor,
        )
        await pauses.follow_holder(session, inquiry)
        if awaiting:
            inquiry.arbitration_office_id = goes_to.id
        record(
            session,
            inquiry,
            actor=actor,
            action=EventAction.handed_back,
            reason=why,
            details={"from": department.code, "to": goes_to.code},
        )
    await session.flush()
    return len(held)


def ensure_free(inquiry: Inquiry) -> None:
    """Refuse a change of hands while an office arbitrates, or once its decision binds."""
    if inquiry.arbitrated_at is not None:
        raise CannotReturn("The supervising office has decided who handles it; its decision binds.")
    if inquiry.awaiting_arbitration:
        raise CannotReturn("This inquiry awaits arbitration: the office decides, with /arbitrate.")


async def supervising_region(session: AsyncSession, inquiry: Inquiry) -> Department:
    """The office whose region hand-overs stay in: the supervising office of the account's
    owning department (the owner itself when it is one; without any office, the owner)."""
    owner = await dispatcher(session, inquiry)
    if owner.is_supervising_office and owner.active:
        return owner
    offices = await departments.enclosing_offices(session, owner)
    return offices[0] if offices else owner


async def check_target(session: AsyncSession, inquiry: Inquiry, target: Department) -> None:
    """A hand-over goes to an active department inside the region of the account's supervising
    office, where that office can still read it."""
    region = await supervising_region(session, inquiry)
    if not target.active or not departments.in_region(region, target):
        raise InvalidTransferTarget(
            f"{target.code} is not an active department in the region of {region.code}, which "
            "supervises the account this inquiry came in on."
        )


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
    # Two disclaimers (returns or transfers, by two departments or one twice): the office decides.
    to_office = await assignments.disclaimers(session, inquiry) + 1 >= MAX_DISCLAIMERS
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
    if to_office:
        await _to_arbitration(session, inquiry, goes_to, now=now, actor=actor, person_id=person_id)
    else:
        await assignments.assign(
            session,
            inquiry,
            goes_to,
            at=now,
            decision=AssignmentDecision.returned,
            disclaims=True,
            reason=f"{reason.value}: {note}",
            actor=actor,
            person_id=person_id,
        )
        await pauses.follow_holder(session, inquiry)
    return goes_to


async def _to_arbitration(
    session: AsyncSession,
    inquiry: Inquiry,
    office: Department,
    *,
    now: datetime,
    actor: str,
    person_id: int | None,
) -> None:
    why = f"disclaimed {MAX_DISCLAIMERS} times: {office.code} decides who handles it"
    await assignments.assign(
        session,
        inquiry,
        office,
        at=now,
        decision=AssignmentDecision.sent_to_arbitration,
        disclaims=True,  # only a disclaimer sends it there
        reason=why,
        actor=actor,
        person_id=person_id,
    )
    await pauses.follow_holder(session, inquiry)
    inquiry.arbitration_office_id = office.id
    record(
        session,
        inquiry,
        actor="system:router",
        action=EventAction.sent_to_arbitration,
        reason=why,
        details={"office": office.code},
    )
    await session.flush()


async def transfer(
    session: AsyncSession,
    inquiry: Inquiry,
    holder: Department,
    target: Department,
    *,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Department:
    """Hand the inquiry to another department in the region; the citizen's due time does not
    change. A transfer by any department but the dispatcher is a disclaimer: the second
    disclaimer sends it to the supervising office to decide instead (no ping-pong). Returns the
    department that holds it now."""
    if inquiry.status is not InquiryStatus.assigned:
        raise CannotReturn(
            f"Only an assigned inquiry can be transferred; this one is {inquiry.status}."
        )
    ensure_free(inquiry)
    if target.id == holder.id:
        raise InvalidTransferTarget(f"{target.code} holds it already.")
    await check_target(session, inquiry, target)
    origin = await dispatcher(session, inquiry)
    disclaims = holder.id != origin.id  # the dispatcher's transfer dispatches
    to_office = disclaims and await assignments.disclaimers(session, inquiry) + 1 >= MAX_DISCLAIMERS
    goes_to = await _arbitrator(session, holder, target) if to_office else target
    record(
        session,
        inquiry,
        actor=actor,
        action=EventAction.transferred,
        reason=note,
        person_id=person_id,
        details=details | {"from": holder.code, "to": goes_to.code, "asked_for": target.code},
    )
    if to_office:
        await _to_arbitration(session, inquiry, goes_to, now=now, actor=actor, person_id=person_id)
    else:
        await assignments.assign(
            session,
            inquiry,
            target,
            at=now,
            decision=AssignmentDecision.transferred,
            disclaims=disclaims,
            reason=note,
            actor=actor,
            person_id=person_id,
        )
        await pauses.follow_holder(session, inquiry)
    return goes_to


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
    if (target is None) == (entry is None):
        raise InvalidTransferTarget("Name one active department, or one referral entry.")
    if target is not None:
        await check_target(session, inquiry, target)
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
        await assignments.assign(
            session,
            inquiry,
            target,
            at=now,
            decision=AssignmentDecision.arbitrated,
            reason=note,
            actor=actor,
            person_id=person_id,
        )
        await pauses.follow_holder(session, inquiry)
