from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app import problems
from app.auth import CurrentPrincipal, acting
from app.clock import NowDep
from app.db import SessionDep
from app.deadlines import extensions, pauses
from app.deadlines import service as deadlines
from app.deadlines import store as calendar_store
from app.deadlines.calendar import office_time_before
from app.delivery import service as outbox
from app.departments import service as departments
from app.idempotency import Idempotent, IdempotentRoute
from app.inquiries import handling, service, views, work
from app.inquiries.models import Channel, EventAction, InquiryKind, InquiryStatus
from app.inquiries.schemas import (
    ArbitrationRequest,
    ChangeFeed,
    ChangeRead,
    EventRead,
    ExtensionDecision,
    ExtensionRequest,
    FirstResponse,
    HandOver,
    InquiryDetail,
    InquiryItem,
    InquiryList,
    InquiryRead,
    KindCorrection,
    MergeCandidateRead,
    MergeRequest,
    NoteCreate,
    NoteRead,
    PauseDecision,
    PauseRequest,
    ReadLogEntry,
    ResumeRequest,
    ReturnRequest,
    SignFor,
    StatusChange,
    TransferRequest,
)
from app.referrals import service as referrals
from app.referrals.schemas import ReferRequest
from app.roles import Action, RoleRequired
from app.routing import transfers
from app.schemas import NOT_MODIFIED, IfMatch, Page, PageDep, conditional, paginate
from app.settings import settings

router = APIRouter(
    prefix="/api/v1/inquiries",
    tags=["inquiries"],
    responses=problems.doc(problems.Unauthorized, service.InquiryNotFound),
    route_class=IdempotentRoute,
    dependencies=[Idempotent],
)


@router.get(
    "",
    response_model=InquiryList,
    summary="Your inquiries",
    responses=problems.doc(work.BadCursor) | NOT_MODIFIED,
)
async def list_inquiries(
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    request: Request,
    response: Response,
    status: InquiryStatus | None = None,
    kind: InquiryKind | None = None,
    channel: Channel | None = None,
    urgent: bool | None = None,
    overdue: Annotated[
        bool | None,
        Query(description="Past the reply due (clock running) or an unmet first-response due."),
    ] = None,
    due_before: datetime | None = None,
    provisional: bool | None = None,
    paused: bool | None = None,
    awaiting: Annotated[
        work.Awaiting | None,
        Query(description="A decision of the office: arbitration, extension or pause."),
    ] = None,
    holder: Annotated[
        str | None, Query(max_length=64, description="The holding department.")
    ] = None,
    fallback: Annotated[
        bool | None, Query(description="Routed by no rule: the owner's triage queue.")
    ] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Text in messages.")
    ] = None,
    unsigned: Annotated[
        bool | None, Query(description="Not signed for (签收) by a person of the holder yet.")
    ] = None,
    sign_overdue: Annotated[
        bool | None,
        Query(
            description="Unsigned for longer than a working half-day of office hours "
            "(SIGN_FOR_WITHIN_OFFICE_HOURS): an office's queue."
        ),
    ] = None,
    delivery: Annotated[
        work.Delivery | None,
        Query(
            description="A reply to the citizen that did not go: `failed`, `awaiting_window` "
            "or `uncertain` (the department resends or confirms it)."
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> InquiryList | Response:
    """Your department's inquiries (an office: its region; a parent: those escalated to it),
    by due time, then id, in keyset pages: a concurrent change never repeats or skips a row.
    No message text. `ETag` / `If-None-Match` answer 304 while nothing changed, the next
    overdue boundary included."""
    filters = work.Filters(
        status,
        kind,
        channel,
        urgent,
        overdue,
        due_before,
        provisional,
        paused,
        awaiting,
        holder,
        fallback,
        q,
        unsigned,
        sign_overdue,
        delivery,
    )
    cutoff = None
    if sign_overdue is not None:
        config = settings()
        cutoff = office_time_before(
            now,
            config.sign_for_within_office_hours,
            await calendar_store.load(session),
            config.office_hours,
        )
    found = await work.page(
        session,
        principal.department,
        filters,
        now=now,
        cursor=cursor,
        limit=limit,
        sign_cutoff=cutoff,
    )
    body = InquiryList(
        items=[
            InquiryItem(
                reference=row.reference,
                kind=row.kind,
                status=row.status,
                channel=row.channel,
                holder=row.holder,
                urgent=row.urgent,
                received_at=row.received_at,
                first_response_due_at=row.first_response_due_at,
                reply_due_at=row.reply_due_at,
                due_provisional=row.due_provisional,
                paused=row.paused,
                awaiting_arbitration=row.awaiting_arbitration,
                version=row.version,
            )
            for row in found.rows
        ],
        next=found.next,
    )
    return conditional(request, response, body, extra=str(found.overdue_boundary))


@router.get(
    "/changes",
    response_model=ChangeFeed,
    summary="What changed for you",
    responses=problems.doc(work.BadCursor) | NOT_MODIFIED,
)
async def list_changes(
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
    after: Annotated[
        str | None, Query(max_length=200, description="The previous answer's `next`.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ChangeFeed | Response:
    """Changes for your view in transaction order: new inquiries and messages, actions,
    deadline changes, warnings and escalations, and `left_view` when an inquiry left it. A
    change is handed out only once every older transaction has finished, so one that committed
    late is never skipped. 304 with `If-None-Match` while nothing is new."""
    items, following = await work.changes(session, principal.department, after=after, limit=limit)
    body = ChangeFeed(
        items=[
            ChangeRead(
                cursor=c.cursor, reference=c.reference, version=c.version, kind=c.kind, at=c.at
            )
            for c in items
        ],
        next=following,
    )
    return conditional(request, response, body)


@router.get(
    "/{reference}",
    response_model=InquiryDetail,
    summary="Read one inquiry",
    responses=NOT_MODIFIED,
)
async def read_inquiry(
    reference: str,
    principal: CurrentPrincipal,
    session: SessionDep,
    request: Request,
    response: Response,
    now: NowDep,
) -> InquiryDetail | Response:
    """One inquiry of your department (or, for a supervising office, of its region): messages
    in order, the current holder beside routing's own decision, both dues with their provenance,
    pauses and the extension, the referral and the replies. The citizen is a per-account
    pseudonym, never the platform id. Its `ETag` follows its content: 304 with `If-None-Match`
    while it has not changed. The read is logged per key, at most once an hour (not a change)."""
    inquiry = await service.get_readable(session, principal.department, reference=reference)
    await views.log_read(
        session,
        inquiry,
        api_key_id=principal.api_key_id,
        department=principal.department,
        actor=principal.actor,
        now=now,
    )
    return conditional(request, response, await views.detail(session, inquiry, now=now))


class NotAnOffice(problems.Forbidden):
    title = "Supervising offices only"
    slug = "supervising-offices-only"
    example_detail = "Only a supervising office asks who read an inquiry."


@router.get(
    "/{reference}/reads",
    summary="Who read an inquiry (supervising office)",
    responses=problems.doc(NotAnOffice),
)
async def read_log(
    reference: str, principal: CurrentPrincipal, session: SessionDep
) -> list[ReadLogEntry]:
    """Every key that read the inquiry's content, at most once an hour each, oldest first:
    for the supervising office of its region."""
    inquiry = await service.get_readable(session, principal.department, reference=reference)
    if not principal.department.is_supervising_office:
        raise NotAnOffice("Only a supervising office asks who read an inquiry.")
    return await views.reads(session, inquiry)


@router.get("/{reference}/events", summary="Audit trail of an inquiry")
async def read_events(
    reference: str, principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> Page[EventRead]:
    """Every change to the inquiry: who, when, what and why, oldest first."""
    inquiry = await service.get_readable(session, principal.department, reference=reference)
    return await paginate(session, service.events(inquiry), page, EventRead)


@router.post(
    "/{reference}/invalid",
    dependencies=[acting(Action.mark_invalid)],
    summary="Mark an inquiry invalid (无效件)",
    responses=problems.doc(RoleRequired, service.NotHolder, service.TransitionNotAllowed),
)
async def mark_invalid(
    reference: str,
    change: StatusChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """End an inquiry as invalid (spam, harassment, empty); the reason is required and audited."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await service.change_status(
        session, inquiry, InquiryStatus.invalid, reason=change.reason, **principal.audit
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/close",
    dependencies=[acting(Action.close)],
    summary="Close a replied inquiry",
    responses=problems.doc(
        RoleRequired, service.NotHolder, service.TransitionNotAllowed, outbox.AnswerNotDelivered
    ),
)
async def close(
    reference: str,
    change: StatusChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Close (办结) an inquiry whose answer reached the citizen: delivered (or confirmed), or
    given by phone, letter or in person (`…/answer-given`)."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    service.check_transition(inquiry.status, InquiryStatus.closed)
    await outbox.check_answer_reached(session, inquiry)
    await service.change_status(
        session, inquiry, InquiryStatus.closed, reason=change.reason, **principal.audit
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/routing-wrong",
    dependencies=[acting(Action.mark_routing_wrong)],
    summary="Say the routing was wrong",
    responses=problems.doc(
        RoleRequired, service.NotHolder, service.AlreadyMarkedWrong, service.NotChangeable
    ),
)
async def mark_routing_wrong(
    reference: str,
    change: StatusChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Record that this inquiry should not have come to your department; it counts against the
    rule that sent it (GET /api/v1/admin/routing/accuracy)."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await service.mark_routing_wrong(
        session,
        inquiry,
        holder_code=principal.department.code,
        now=now,
        reason=change.reason,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/kind",
    dependencies=[acting(Action.correct_kind)],
    summary="Correct the inquiry's kind",
    responses=problems.doc(RoleRequired, service.NotHolder, service.NotChangeable),
)
async def correct_kind(
    reference: str,
    change: KindCorrection,
    principal: CurrentPrincipal,
    session: SessionDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Set the kind (咨询, 求助, 投诉, 举报, 建议, other) when classification got it wrong."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    before = inquiry.kind
    await service.correct_kind(
        session, inquiry, change.kind, reason=change.reason, **principal.audit
    )
    if inquiry.kind is not before:
        await deadlines.recompute_for_kind(session, inquiry, actor=principal.actor)
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/refer",
    dependencies=[acting(Action.refer)],
    summary="Refer an inquiry out of scope",
    responses=problems.doc(
        RoleRequired,
        service.NotHolder,
        referrals.ReferralEntryNotFound,
        referrals.UnverifiedEntry,
        referrals.PublicNote,
        service.TransitionNotAllowed,
    ),
)
async def refer(
    reference: str,
    data: ReferRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Outside your duties: the citizen is told who handles it and how to reach them (from the
    entry's verified template, plus your note), the reply is queued and the inquiry ends
    `referred`."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    transfers.ensure_free(inquiry)  # an office's binding decision is not undone by a referral
    entry = await referrals.get_entry(session, code=data.entry_code)
    await referrals.refer(session, inquiry, entry, note=data.note, **principal.audit)
    deadlines.responded(inquiry, at=now)  # a person's referral is their response
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/return",
    dependencies=[acting(Action.return_)],
    summary="Return an inquiry (退单)",
    responses=problems.doc(RoleRequired, service.NotHolder, transfers.CannotReturn),
)
async def return_inquiry(
    reference: str,
    data: ReturnRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Give back an inquiry that should not have come to you, with a reason code and a note,
    within 1 working day of receiving it.
    It goes back to the dispatcher; after two returns, or once two departments have disclaimed
    it, to the supervising office, whose decision binds."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await transfers.return_inquiry(
        session,
        inquiry,
        principal.department,
        reason=data.reason,
        note=data.note,
        now=now,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/transfer",
    dependencies=[acting(Action.transfer)],
    summary="Transfer an inquiry to another department",
    responses=problems.doc(
        RoleRequired, service.NotHolder, transfers.CannotReturn, transfers.InvalidTransferTarget
    ),
)
async def transfer(
    reference: str,
    data: TransferRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Hand over to the department whose duties cover it, inside the region of the office that
    supervises the account (422 otherwise); the citizen's due time stays. A transfer is a
    disclaimer: the second disclaimer (transfer or return) sends it to the supervising office,
    whose decision binds."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    target = await departments.get(session, code=data.department_code)
    await transfers.transfer(
        session,
        inquiry,
        principal.department,
        target,
        note=data.note,
        now=now,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/arbitrate",
    dependencies=[acting(Action.arbitrate)],
    summary="Decide who handles a disputed inquiry (supervising office)",
    responses=problems.doc(
        RoleRequired,
        service.NotHolder,
        transfers.NotUnderArbitration,
        transfers.InvalidTransferTarget,
    ),
)
async def arbitrate(
    reference: str,
    data: ArbitrationRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """The office an inquiry was sent to after repeated returns names who handles it (or refers
    it out). The decision binds: the inquiry cannot be returned again."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    target = (
        await departments.get(session, code=data.department_code) if data.department_code else None
    )
    entry = await referrals.get_entry(session, code=data.entry_code) if data.entry_code else None
    await transfers.arbitrate(
        session,
        inquiry,
        principal.department,
        target=target,
        entry=entry,
        note=data.note,
        now=now,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


class FutureResponse(problems.Problem):
    status = 422
    title = "Response in the future"
    slug = "response-in-the-future"
    example_detail = "2026-11-25T02:00:00Z is later than now."


@router.post(
    "/{reference}/first-response",
    dependencies=[acting(Action.record_first_response)],
    summary="Record a first response given by phone, in person or by letter",
    responses=problems.doc(
        RoleRequired, service.NotHolder, service.TransitionNotAllowed, FutureResponse
    ),
)
async def record_first_response(
    reference: str,
    data: FirstResponse,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """A person's first response meets `first_response_due_at` (audited, with who gave it);
    an earlier one stands. Only while the inquiry is open (new or assigned)."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    if data.at > now:
        raise FutureResponse(f"{data.at.isoformat()} is later than now.")
    if inquiry.status not in (InquiryStatus.new, InquiryStatus.assigned):
        raise service.TransitionNotAllowed(
            f"{reference} is {inquiry.status}: nothing is owed.",
            current_status=inquiry.status.value,
            allowed_actions=service.allowed_now(inquiry.status),
        )
    deadlines.responded(inquiry, at=data.at)
    audit = principal.audit
    service.record(
        session,
        inquiry,
        actor=audit["actor"],
        person_id=audit["person_id"],
        action=EventAction.first_response_recorded,
        reason=data.note,
        details=audit["details"] | {"channel": data.channel, "at": data.at.isoformat()},
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/pause",
    dependencies=[acting(Action.pause)],
    summary="Stop the clock, or ask the supervising office to",
    responses=problems.doc(RoleRequired, service.NotHolder, pauses.PauseConflict),
)
async def pause(
    reference: str,
    data: PauseRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Only while the inquiry is open (new or assigned), awaits no arbitration and is before its
    due time; at most PAUSE_MAX_COUNT (2) pauses, crediting together no more than the rule's
    length. `awaiting_citizen` stops the clock now, and the citizen's next message ends it (the
    conversation stays open to it meanwhile). `consulting_agency` and `citizen_unreachable` are
    asked of the holder's nearest supervising office; the clock stops from its approval. A pause
    credits the working days wholly inside it."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await pauses.start_pause(
        session,
        inquiry,
        reason=data.reason,
        note=data.note,
        now=now,
        max_count=settings().pause_max_count,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/pause/decision",
    dependencies=[acting(Action.decide_pause)],
    summary="Approve or refuse a pause (supervising office)",
    responses=problems.doc(RoleRequired, pauses.PauseConflict, pauses.NotYourOffice),
)
async def decide_pause(
    reference: str,
    data: PauseDecision,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """The nearest supervising office of the department holding the inquiry now decides; an
    approval stops the clock from now, if the inquiry can still be paused."""
    inquiry = await service.get_readable(session, principal.department, reference=reference)
    await pauses.decide_pause(
        session,
        inquiry,
        principal.department,
        approve=data.approve,
        note=data.note,
        now=now,
        if_match=if_match,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/resume",
    dependencies=[acting(Action.resume)],
    summary="Restart the clock",
    responses=problems.doc(RoleRequired, service.NotHolder, pauses.PauseConflict),
)
async def resume(
    reference: str,
    data: ResumeRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """End the pause: the due times are counted again; the pause credits the working days wholly
    inside it (none for a pause within one day or overnight)."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    added = await pauses.end_pause(session, inquiry, now=now, note=data.note, **principal.audit)
    if added is None:
        raise pauses.PauseConflict(f"The clock of {reference} is not stopped.")
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/extension",
    dependencies=[acting(Action.request_extension)],
    summary="Ask for more time",
    responses=problems.doc(RoleRequired, service.NotHolder, extensions.ExtensionRefused),
)
async def request_extension(
    reference: str,
    data: ExtensionRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """Before the due time, at most once, no longer than the original period; the nearest
    supervising office decides."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await extensions.request_extension(
        session,
        inquiry,
        working_days=data.working_days,
        reason=data.reason,
        now=now,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/extension/decision",
    dependencies=[acting(Action.decide_extension)],
    summary="Approve or refuse an extension (supervising office)",
    responses=problems.doc(RoleRequired, extensions.ExtensionRefused, pauses.NotYourOffice),
)
async def decide_extension(
    reference: str,
    data: ExtensionDecision,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryRead:
    """The nearest supervising office of the department holding the inquiry now decides (after a
    transfer, the new holder's); refused (409) once the inquiry has ended or been answered. The
    due times are counted again under the inquiry's lock; the original and the extended due
    times are both kept."""
    inquiry = await service.get_readable(session, principal.department, reference=reference)
    await extensions.decide_extension(
        session,
        inquiry,
        principal.department,
        approve=data.approve,
        note=data.note,
        now=now,
        if_match=if_match,
        **principal.audit,
    )
    return InquiryRead.model_validate(inquiry)


@router.post(
    "/{reference}/sign-for",
    dependencies=[acting(Action.sign_for)],
    summary="Sign for an inquiry (签收)",
    responses=problems.doc(
        RoleRequired,
        service.NotHolder,
        service.TransitionNotAllowed,
        service.NotChangeable,
        handling.AlreadySigned,
        handling.PersonRequired,
        handling.NotAColleague,
    ),
)
async def sign_for(
    reference: str,
    data: SignFor,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryDetail:
    """A person of the holding department takes the inquiry on. It never moves a deadline (the
    clock started at receipt). A new holder starts unsigned; an inquiry unsigned past a working
    half-day of office hours joins the office's queues (`?sign_overdue=true`)."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await handling.sign_for(
        session,
        inquiry,
        principal.department,
        signer=principal.person,
        person_id=data.person_id,
        now=now,
        actor=principal.actor,
        details=principal.audit["details"],
    )
    return await views.detail(session, inquiry, now=now)


@router.post(
    "/{reference}/hand-over",
    dependencies=[acting(Action.hand_over)],
    summary="Hand a signed-for inquiry to a colleague",
    responses=problems.doc(
        RoleRequired,
        service.NotHolder,
        service.TransitionNotAllowed,
        service.NotChangeable,
        handling.AlreadySigned,
        handling.NotSigned,
        handling.NotAColleague,
    ),
)
async def hand_over(
    reference: str,
    data: HandOver,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryDetail:
    """The colleague (an active person of the same department) now holds it for the
    department; audited with who handed it to whom."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    await handling.hand_over(
        session,
        inquiry,
        principal.department,
        person_id=data.person_id,
        note=data.note,
        now=now,
        actor=principal.actor,
        by_person_id=principal.audit["person_id"],
        details=principal.audit["details"],
    )
    return await views.detail(session, inquiry, now=now)


@router.post(
    "/{reference}/notes",
    dependencies=[acting(Action.note)],
    status_code=201,
    summary="Add an internal note",
    responses=problems.doc(RoleRequired, service.NotHolder),
)
async def add_note(
    reference: str,
    data: NoteCreate,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> NoteRead:
    """For colleagues: never sent, never shown to the citizen. Only the holding department
    writes notes; every department that may read the inquiry reads them."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    audit = principal.audit
    note = await handling.add_note(
        session,
        inquiry,
        principal.department,
        text=data.text,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return NoteRead.model_validate(note)


@router.get("/{reference}/notes", summary="Internal notes on an inquiry")
async def list_notes(
    reference: str, principal: CurrentPrincipal, session: SessionDep
) -> list[NoteRead]:
    """Oldest first. Every department that may read the inquiry reads its notes (an office,
    a parent it was escalated to); the citizen never does."""
    inquiry = await service.get_readable(session, principal.department, reference=reference)
    return [NoteRead.model_validate(n) for n in await handling.notes(session, inquiry)]


@router.post(
    "/{reference}/merge",
    dependencies=[acting(Action.merge)],
    summary="Merge a repeat appeal into another inquiry (并单)",
    responses=problems.doc(
        RoleRequired,
        service.NotHolder,
        service.TransitionNotAllowed,
        service.AwaitingArbitration,
        handling.MergeRefused,
    ),
)
async def merge(
    reference: str,
    data: MergeRequest,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryDetail:
    """This inquiry repeats `into` (open, held by your department). It ends `merged`, pointing
    at the survivor, whose answer its citizen gets; its clock stops and it counts in neither the
    on-time nor the overdue figures. Undone with /unmerge the same day. If-Match is this
    inquiry's version."""
    ids = {
        code: (await service.get_held(session, principal.department, reference=code)).id
        for code in (reference, data.into)
    }
    # Both rows locked in id order, as every writer of several inquiries locks them (the year
    # recount, a deactivation's hand-back): two of them crossing never deadlock.
    locked = {}
    for code in sorted(ids, key=ids.__getitem__):
        locked[code] = await service.get_owned(
            session,
            principal.department,
            reference=code,
            if_match=if_match if code == reference else None,
        )
    audit = principal.audit
    await handling.merge(
        session,
        locked[reference],
        locked[data.into],
        reason=data.reason,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return await views.detail(session, locked[reference], now=now)


@router.post(
    "/{reference}/unmerge",
    dependencies=[acting(Action.merge)],
    summary="Undo a merge (the same day)",
    responses=problems.doc(RoleRequired, service.NotHolder, handling.MergeRefused),
)
async def unmerge(
    reference: str,
    change: StatusChange,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    if_match: IfMatch = None,
) -> InquiryDetail:
    """Back to the status it had, on the (Beijing) day of the merge only."""
    inquiry = await service.get_owned(
        session, principal.department, reference=reference, if_match=if_match
    )
    audit = principal.audit
    await handling.unmerge(
        session,
        inquiry,
        reason=change.reason,
        now=now,
        actor=audit["actor"],
        person_id=audit["person_id"],
        details=audit["details"],
    )
    return await views.detail(session, inquiry, now=now)


@router.get(
    "/{reference}/merge-candidates",
    summary="Inquiries this one may repeat",
    responses=problems.doc(service.NotHolder),
)
async def merge_candidates(
    reference: str, principal: CurrentPrincipal, session: SessionDep, now: NowDep
) -> list[MergeCandidateRead]:
    """Open inquiries of your department: the same citizen within MERGE_SAME_CITIZEN_DAYS (30),
    and similar texts (rapidfuzz WRatio ≥ MERGE_SIMILARITY_MIN, 60), among the
    MERGE_CANDIDATES_MAX (200) most recent. Best first; no message text."""
    inquiry = await service.get_held(session, principal.department, reference=reference)
    return [
        MergeCandidateRead(
            reference=c.inquiry.reference,
            kind=c.inquiry.kind,
            status=c.inquiry.status,
            received_at=c.inquiry.received_at,
            same_citizen=c.same_citizen,
            similarity=c.similarity,
        )
        for c in await handling.merge_candidates(session, inquiry, now=now)
    ]
