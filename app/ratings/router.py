from typing import Annotated

from fastapi import APIRouter, Query

from app import problems
from app.auth import CurrentPrincipal, acting
from app.clock import NowDep
from app.db import SessionDep
from app.idempotency import Idempotent, IdempotentRoute
from app.inquiries import service as inquiries
from app.ratings import service
from app.ratings.models import CallbackStatus
from app.ratings.schemas import CallbackItem, CallbackOutcome, CallbackView
from app.roles import Action, RoleRequired
from app.schemas import IfMatch

router = APIRouter(
    tags=["ratings"],
    responses=problems.doc(problems.Unauthorized),
    route_class=IdempotentRoute,
    dependencies=[Idempotent],
)


@router.get(
    "/api/v1/callbacks",
    summary="The department's call-backs (回访)",
)
async def callbacks(
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    status: Annotated[CallbackStatus, Query(description="open or done.")] = CallbackStatus.open,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CallbackItem]:
    """Call-backs owed after bad ratings of this department's answers, the earliest due first,
    each saying whether it is overdue."""
    found = await service.listing(
        session, principal.department.id, status=status, now=now, limit=limit
    )
    return [CallbackItem.model_validate(item) for item in found]


@router.post(
    "/api/v1/inquiries/{reference}/callbacks/{callback_id}",
    dependencies=[acting(Action.reply)],
    summary="Record a call-back's outcome (回访)",
    responses=problems.doc(
        RoleRequired,
        inquiries.InquiryNotFound,
        inquiries.NotHolder,
        service.CallbackNotFound,
        service.CallbackDone,
    ),
)
async def record_callback(
    reference: str,
    callback_id: int,
    data: CallbackOutcome,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> CallbackView:
    """After a bad rating the department calls the citizen back by its due time; this records
    what came of it. Reached, the citizen is asked to rate again."""
    inquiry = await inquiries.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    audit = principal.audit
    done = await service.record_outcome(
        session,
        inquiry,
        callback_id,
        outcome=data.outcome,
        reached=data.reached,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return CallbackView.model_validate(done)
