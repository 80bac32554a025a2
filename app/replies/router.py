from typing import Annotated

from fastapi import APIRouter, Query, status

from app import problems
from app.auth import CurrentPrincipal, acting
from app.clock import NowDep
from app.db import SessionDep
from app.delivery import service as outbox
from app.idempotency import Idempotent, IdempotentRoute
from app.inquiries import service as inquiries
from app.inquiries.schemas import DeliveryView, ReplyView, StatusChange
from app.replies import quality, service
from app.replies.models import GivenVia, ReplyPurpose
from app.replies.schemas import (
    AnswerGiven,
    Draft,
    ReplyCreate,
    ReplyReview,
    TemplateCreate,
    TemplateRead,
    TemplateUpdate,
)
from app.roles import Action, RoleRequired
from app.schemas import IfMatch

router = APIRouter(
    tags=["replies"],
    responses=problems.doc(problems.Unauthorized),
    route_class=IdempotentRoute,
    dependencies=[Idempotent],
)
P = "/api/v1/inquiries/{reference}"


class FutureAnswer(problems.Problem):
    status = 422
    title = "Answer at an impossible time"
    slug = "answer-in-the-future"
    example_detail = "2026-11-25T02:00:00Z is later than now."


@router.post(
    f"{P}/replies",
    dependencies=[acting(Action.reply)],
    status_code=status.HTTP_201_CREATED,
    summary="Reply: an interim message or the answer",
    responses=problems.doc(
        RoleRequired,
        inquiries.InquiryNotFound,
        inquiries.NotHolder,
        inquiries.TransitionNotAllowed,
        service.ReplyRefused,
        service.AnswerPending,
        service.OneReplyPerComment,
    ),
)
async def reply(
    reference: str,
    data: ReplyCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> ReplyView:
    """Runs the quality checks first (every failure in the 422's `errors`): not empty, not only
    a stock phrase, no unfilled 【请填写…】, within the channel's length, no sensitive word, and
    on a public comment no citizen's mobile or ID number. A private reply is queued at once; a
    public one waits for a second person's review. An accepted interim reply meets the
    first-response due; an accepted answer makes the inquiry `replied`."""
    inquiry = await inquiries.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    audit = principal.audit
    created = await service.submit(
        session,
        inquiry,
        principal.department,
        purpose=ReplyPurpose(data.purpose),
        text=data.text,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return ReplyView.model_validate(created)


@router.post(
    f"{P}/answer-given",
    dependencies=[acting(Action.reply)],
    status_code=status.HTTP_201_CREATED,
    summary="Record an answer given by phone, letter or in person",
    responses=problems.doc(
        RoleRequired,
        inquiries.InquiryNotFound,
        inquiries.NotHolder,
        inquiries.TransitionNotAllowed,
        FutureAnswer,
    ),
)
async def answer_given(
    reference: str,
    data: AnswerGiven,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> ReplyView:
    """Who answered, when, by which channel, and what was said. Nothing is sent; the inquiry
    becomes `replied`."""
    inquiry = await inquiries.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    if data.given_at > now:
        raise FutureAnswer(f"{data.given_at.isoformat()} is later than now.")
    if data.given_at < inquiry.received_at:
        raise FutureAnswer(
            f"{data.given_at.isoformat()} is before the inquiry arrived "
            f"({inquiry.received_at.isoformat()})."
        )
    audit = principal.audit
    created = await service.record_given(
        session,
        inquiry,
        via=GivenVia(data.via),
        given_at=data.given_at,
        given_by=data.given_by,
        text=data.text,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return ReplyView.model_validate(created)


class NoteRequired(problems.Problem):
    status = 422
    title = "A refusal says why"
    slug = "review-note-required"
    example_detail = "Refusing a reply needs a note for its author."


@router.post(
    f"{P}/replies/{{reply_id}}/review",
    dependencies=[acting(Action.approve)],
    summary="Approve or refuse a public reply (reviewer, a second person)",
    responses=problems.doc(
        RoleRequired,
        inquiries.InquiryNotFound,
        inquiries.NotHolder,
        inquiries.TransitionNotAllowed,
        service.ReplyNotFound,
        service.ReviewConflict,
        service.SecondPersonRequired,
        NoteRequired,
    ),
)
async def review(
    reference: str,
    reply_id: int,
    data: ReplyReview,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> ReplyView:
    """A reviewer of the holding department other than the reply's author approves it (it is
    queued; an answer makes the inquiry `replied`) or refuses it with a note (never sent)."""
    if not data.approve and len(data.note) < 2:
        raise NoteRequired("Refusing a reply needs a note for its author.")
    inquiry = await inquiries.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    found = await service.get_reply(session, inquiry, reply_id)
    reviewed = await service.review(
        session,
        inquiry,
        found,
        reviewer=principal.person,
        approve=data.approve,
        note=data.note,
        now=now,
        actor=principal.actor,
        details=principal.audit["details"],
    )
    return ReplyView.model_validate(reviewed)


@router.get(
    f"{P}/draft",
    summary="A template filled in for this inquiry",
    responses=problems.doc(
        inquiries.InquiryNotFound, inquiries.NotHolder, service.TemplateNotFound
    ),
)
async def draft(
    reference: str,
    template: Annotated[str, Query(min_length=1, max_length=64)],
    principal: CurrentPrincipal,
    session: SessionDep,
) -> Draft:
    """Your department's template with {reference}, {due_date} and {department} filled in; the
    placeholders (【请填写…】) are left for you: a reply that still holds one is refused."""
    inquiry = await inquiries.get_held(session, principal.department, reference=reference)
    found = await service.get_template(session, principal.department, template)
    if not found.active:
        raise service.TemplateNotFound(f"Template {template!r} is retired.")
    text = service.render(found, inquiry, principal.department)
    return Draft(template=found.code, text=text, placeholders=quality.PLACEHOLDER.findall(text))


@router.get("/api/v1/templates", summary="Your department's reply templates")
async def list_templates(principal: CurrentPrincipal, session: SessionDep) -> list[TemplateRead]:
    """Retired ones included (`active` false); any key of the department reads them."""
    return [
        TemplateRead.model_validate(t)
        for t in await service.templates(session, principal.department)
    ]


@router.post(
    "/api/v1/templates",
    dependencies=[acting(Action.manage_templates)],
    status_code=status.HTTP_201_CREATED,
    summary="Add a reply template (reviewer)",
    responses=problems.doc(RoleRequired, service.TemplateExists, service.BadTemplate),
)
async def create_template(
    data: TemplateCreate, principal: CurrentPrincipal, session: SessionDep
) -> TemplateRead:
    """Variables {reference}, {due_date} and {department} are filled in for each inquiry; any
    other variable is refused. Placeholders such as 【请填写处理结果】 are for the responder."""
    created = await service.create_template(
        session, principal.department, code=data.code, title=data.title, body=data.body
    )
    return TemplateRead.model_validate(created)


@router.patch(
    "/api/v1/templates/{code}",
    dependencies=[acting(Action.manage_templates)],
    summary="Change or retire a reply template (reviewer)",
    responses=problems.doc(RoleRequired, service.TemplateNotFound, service.BadTemplate),
)
async def update_template(
    code: str, data: TemplateUpdate, principal: CurrentPrincipal, session: SessionDep
) -> TemplateRead:
    """A retired template (`active` false) no longer drafts replies; it is kept for the record."""
    found = await service.get_template(session, principal.department, code)
    if data.body is not None:
        service.template_variables(data.body)
        found.body = data.body
    if data.title is not None:
        found.title = data.title
    if data.active is not None:
        found.active = data.active
    await session.flush()
    await session.refresh(found)
    return TemplateRead.model_validate(found)


@router.post(
    f"{P}/deliveries/{{delivery_id}}/resend",
    dependencies=[acting(Action.reply)],
    summary="Send a failed, waiting or uncertain delivery again",
    responses=problems.doc(
        RoleRequired,
        inquiries.InquiryNotFound,
        inquiries.NotHolder,
        outbox.DeliveryNotFound,
        outbox.DeliveryConflict,
    ),
)
async def resend(
    reference: str,
    delivery_id: int,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch = None,
) -> DeliveryView:
    """Queued again, with a new job. For an `uncertain` one, first check that the citizen did
    not get it (the platform may have sent it): a known success is never sent again."""
    inquiry = await inquiries.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    found = await outbox.get_delivery(session, inquiry, delivery_id)
    audit = principal.audit
    await outbox.resend(
        session,
        inquiry,
        found,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return DeliveryView.model_validate(found)


@router.post(
    f"{P}/deliveries/{{delivery_id}}/confirm",
    dependencies=[acting(Action.reply)],
    summary="Confirm that an uncertain delivery reached the citizen",
    responses=problems.doc(
        RoleRequired,
        inquiries.InquiryNotFound,
        inquiries.NotHolder,
        outbox.DeliveryNotFound,
        outbox.DeliveryConflict,
    ),
)
async def confirm(
    reference: str,
    delivery_id: int,
    data: StatusChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> DeliveryView:
    """After checking (the citizen says so, the account's back office shows it): delivered."""
    inquiry = await inquiries.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    found = await outbox.get_delivery(session, inquiry, delivery_id)
    audit = principal.audit
    await outbox.confirm(
        session,
        inquiry,
        found,
        note=data.reason,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return DeliveryView.model_validate(found)
