from fastapi import APIRouter

from app import problems
from app.auth import CurrentPrincipal, acting
from app.clock import NowDep
from app.db import SessionDep
from app.idempotency import Idempotent, IdempotentRoute
from app.inquiries import service as inquiries
from app.ratings import service
from app.ratings.schemas import CallbackOutcome, CallbackView
from app.roles import Action, RoleRequired
from app.schemas import IfMatch

router = APIRouter(
    tags=["ratings"],
    responses=problems.doc(problems.Unauthorized),
    route_class=IdempotentRoute,
    dependencies=[Idempotent],
)


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
