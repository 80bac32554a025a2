from fastapi import APIRouter

from app import problems
from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.inquiries import service
from app.inquiries.models import InquiryStatus
from app.inquiries.schemas import EventRead, InquiryRead, StatusChange

router = APIRouter(
    prefix="/api/v1/inquiries",
    tags=["inquiries"],
    responses=problems.doc(problems.Unauthorized, service.InquiryNotFound),
)


@router.get("/{reference}", summary="Read one inquiry")
async def read_inquiry(
    reference: str, principal: CurrentPrincipal, session: SessionDep
) -> InquiryRead:
    """One of your department's inquiries, with its messages in order."""
    inquiry = await service.get_for_department(session, principal.department, reference=reference)
    return InquiryRead.model_validate(inquiry)


@router.get("/{reference}/events", summary="Audit trail of an inquiry")
async def read_events(
    reference: str, principal: CurrentPrincipal, session: SessionDep
) -> list[EventRead]:
    """Every change to the inquiry: who, when, what and why, oldest first."""
    inquiry = await service.get_for_department(session, principal.department, reference=reference)
    return [EventRead.model_validate(event) for event in await service.events(session, inquiry)]


async def _change(
    reference: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    target: InquiryStatus,
    reason: str,
) -> InquiryRead:
    inquiry = await service.get_for_department(
        session, principal.department, reference=reference, for_update=True
    )
    service.transition(
        session,
        inquiry,
        target,
        actor=principal.actor,
        reason=reason,
        person_id=principal.person.id if principal.person else None,
    )
    await session.flush()
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/invalid",
    summary="Mark an inquiry invalid (无效件)",
    responses=problems.doc(service.TransitionNotAllowed),
)
async def mark_invalid(
    reference: str, change: StatusChange, principal: CurrentPrincipal, session: SessionDep
) -> InquiryRead:
    """End an inquiry as invalid (spam, harassment, empty); the reason is required and audited."""
    return await _change(reference, principal, session, InquiryStatus.invalid, change.reason)


@router.post(
    "/{reference}/close",
    summary="Close a replied inquiry",
    responses=problems.doc(service.TransitionNotAllowed),
)
async def close(
    reference: str, change: StatusChange, principal: CurrentPrincipal, session: SessionDep
) -> InquiryRead:
    """Close an inquiry whose answer reached the citizen."""
    return await _change(reference, principal, session, InquiryStatus.closed, change.reason)
