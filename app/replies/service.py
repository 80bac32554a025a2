"""A department's replies: an interim message, the answer, or an answer given by phone, letter or
in person; the quality checks each must pass; a reviewer's approval for public comments; and the
department's templates. An accepted reply goes into the outbox (app/delivery) in the same
transaction."""

import string
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines import service as deadlines
from app.deadlines.calendar import CHINA
from app.delivery import service as outbox
from app.departments.models import Department
from app.inquiries.models import Channel, EventAction, Inquiry, InquiryStatus
from app.inquiries.service import (
    check_action,
    check_not_awaiting_arbitration,
    check_transition,
    record,
    transition,
)
from app.people.models import Person
from app.problems import Conflict, Forbidden, NotFound, Problem
from app.referrals.models import ReferralEntry
from app.replies import quality
from app.replies.models import GivenVia, Reply, ReplyPurpose, ReplyStatus, ReplyTemplate
from app.roles import Action
from app.settings import settings

ANSWER_PRIORITY = 2  # after urgent advice (0) and referrals (1)
VARIABLES = ("reference", "due_date", "department")


class OneReplyPerComment(Conflict):
    title = "A comment takes one reply"
    slug = "one-reply-per-comment"
    example_detail = (
        "WX20261124-000123 is a public comment, which takes one reply: send the answer."
    )


class ReplyRefused(Problem):
    status = 422
    title = "Reply refused"
    slug = "reply-refused"
    example_detail = (
        "The reply does not meet the standard: 1 problem (see `errors`). Fix them all, then send "
        "it again."
    )


class ReplyNotFound(NotFound):
    title = "Reply not found"
    slug = "reply-not-found"
    example_detail = "No reply 42 on WX20261124-000123."


class ReviewConflict(Conflict):
    title = "Reply cannot be reviewed so"
    slug = "review-conflict"
    example_detail = "Reply 42 is queued: only a reply awaiting approval is reviewed."


class SecondPersonRequired(Forbidden):
    title = "A second person reviews"
    slug = "second-person-required"
    example_detail = (
        "A public reply is approved by a reviewer other than its author, with a person's key."
    )


class AnswerPending(Conflict):
    title = "An answer awaits review"
    slug = "answer-pending"
    example_detail = "Reply 42, an answer to WX20261124-000123, awaits a reviewer's decision."


class TemplateNotFound(NotFound):
    title = "Template not found"
    slug = "template-not-found"
    example_detail = "No template 'social-security-answer' in hefei-hrss."


class TemplateExists(Conflict):
    title = "Template exists"
    slug = "template-exists"
    example_detail = "hefei-hrss already has a template 'social-security-answer'."


class BadTemplate(Problem):
    status = 422
    title = "Unusable template"
    slug = "bad-template"
    example_detail = (
        "Unknown variable {name}: a template may use {reference}, {due_date} and {department} "
        "(write {{ and }} for literal braces)."
    )


async def allowed_contacts(session: AsyncSession, department: Department) -> list[str]:
    """Numbers a public reply may carry: the referral directory's and the department's own."""
    directory = await session.scalars(select(ReferralEntry.contact).where(ReferralEntry.active))
    return [*directory, *department.published_contacts]


async def check(session: AsyncSession, inquiry: Inquiry, department: Department, text: str) -> None:
    """Every quality finding at once, as one 422 (`errors`), or nothing."""
    config = settings()
    limit = config.reply_length_limits.get(f"{inquiry.platform}.{inquiry.channel}", 600)
    findings = quality.check(
        text,
        limit=limit,
        sensitive_words=config.sensitive_words,
        public=inquiry.channel is Channel.comment,
        allowed_contacts=await allowed_contacts(session, department),
    )
    if findings:
        raise ReplyRefused(
            f"The reply does not meet the standard: {len(findings)} problem"
            f"{'s' if len(findings) > 1 else ''} (see `errors`). Fix them all, then send it again.",
            errors=[{"check": f.check, "detail": f.detail, "excerpt": f.excerpt} for f in findings],
        )


async def withdraw_pending(
    session: AsyncSession, inquiry: Inquiry, *, why: str, now: datetime, actor: str
) -> None:
    """Replies awaiting review that can no longer go out as written: the holder changed (its
    reviewers, its contacts), an answer was accepted, or the inquiry was merged. Never sent."""
    await session.execute(
        update(Reply)
        .where(Reply.inquiry_id == inquiry.id, Reply.status == ReplyStatus.awaiting_approval)
        .values(
            status=ReplyStatus.withdrawn,
            reviewed_at=now,
            reviewed_by=actor,
            review_note=why,
        )
        .execution_options(synchronize_session=False)
    )


async def _accept(
    session: AsyncSession,
    inquiry: Inquiry,
    reply: Reply,
    *,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """A person's reply is accepted (queued, or given elsewhere): it meets the first-response
    due, and an answer makes the inquiry `replied`."""
    deadlines.responded(inquiry, at=reply.given_at or now)
    if reply.purpose is ReplyPurpose.answer:
        await withdraw_pending(
            session, inquiry, why=f"answered (reply {reply.id})", now=now, actor=actor
        )
        transition(
            session,
            inquiry,
            InquiryStatus.replied,
            actor=actor,
            reason="answered"
            if reply.given_via is GivenVia.platform
            else f"answered by {reply.given_via}",
            person_id=person_id,
            details=details | {"reply_id": reply.id},
        )


async def _pending_answer(session: AsyncSession, inquiry: Inquiry) -> Reply | None:
    return await session.scalar(
        select(Reply).where(
            Reply.inquiry_id == inquiry.id,
            Reply.purpose == ReplyPurpose.answer,
            Reply.status == ReplyStatus.awaiting_approval,
        )
    )


async def submit(
    session: AsyncSession,
    inquiry: Inquiry,
    department: Department,
    *,
    purpose: ReplyPurpose,
    text: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Reply:
    """An interim reply or the answer, to go out on the platform. It must pass the quality
    checks. On a public comment it waits for a second person's approval; otherwise it is queued
    at once (an answer makes the inquiry `replied`)."""
    check_action(inquiry, Action.reply)
    check_not_awaiting_arbitration(inquiry)
    if purpose is ReplyPurpose.answer:
        check_action_for_answer(inquiry)
    await check(session, inquiry, department, text)
    public = inquiry.channel is Channel.comment
    if public and purpose is not ReplyPurpose.answer:
        raise OneReplyPerComment(
            f"{inquiry.reference} is a public comment, which takes one reply: send the answer."
        )
    if (
        public
        and purpose is ReplyPurpose.answer
        and (pending := await _pending_answer(session, inquiry))
    ):
        raise AnswerPending(
            f"Reply {pending.id}, an answer to {inquiry.reference}, awaits a reviewer's decision."
        )
    reply = Reply(
        inquiry_id=inquiry.id,
        text=text,
        purpose=purpose,
        priority=ANSWER_PRIORITY,
        author=actor,
        person_id=person_id,
        status=ReplyStatus.awaiting_approval if public else ReplyStatus.queued,
        given_via=GivenVia.platform,
    )
    session.add(reply)
    await session.flush()
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.reply_submitted if public else EventAction.reply_queued,
        details=details | {"reply_id": reply.id, "purpose": purpose.value},
    )
    if not public:
        await outbox.enqueue(session, reply)
        await _accept(
            session, inquiry, reply, now=now, actor=actor, person_id=person_id, details=details
        )
    await session.flush()
    return reply


def check_action_for_answer(inquiry: Inquiry) -> None:
    """An answer moves the inquiry to `replied`: the status table must allow that now."""
    check_transition(inquiry.status, InquiryStatus.replied)


async def record_given(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    via: GivenVia,
    given_at: datetime,
    given_by: str,
    text: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Reply:
    """An answer given by phone, letter or in person: recorded (what was said, when, by whom),
    nothing to send; the inquiry is `replied`. Also after an answer that did not reach the
    citizen on the platform: then it only records how the citizen got it."""
    already = inquiry.status is InquiryStatus.replied
    if not already:
        check_action(inquiry, Action.reply)
        check_action_for_answer(inquiry)
    check_not_awaiting_arbitration(inquiry)
    reply = Reply(
        inquiry_id=inquiry.id,
        text=text,
        purpose=ReplyPurpose.answer,
        priority=ANSWER_PRIORITY,
        author=actor,
        person_id=person_id,
        status=ReplyStatus.given,
        given_via=via,
        given_at=given_at,
        given_by=given_by,
    )
    session.add(reply)
    await session.flush()
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.answer_recorded,
        details=details
        | {"reply_id": reply.id, "via": via.value, "given_at": given_at.isoformat()},
    )
    if not already:
        await _accept(
            session, inquiry, reply, now=now, actor=actor, person_id=person_id, details=details
        )
    await session.flush()
    return reply


async def get_reply(session: AsyncSession, inquiry: Inquiry, reply_id: int) -> Reply:
    reply = await session.scalar(
        select(Reply).where(Reply.id == reply_id, Reply.inquiry_id == inquiry.id).with_for_update()
    )
    if reply is None:
        raise ReplyNotFound(f"No reply {reply_id} on {inquiry.reference}.")
    return reply


async def review(
    session: AsyncSession,
    inquiry: Inquiry,
    reply: Reply,
    *,
    reviewer: Person | None,
    approve: bool,
    note: str,
    now: datetime,
    actor: str,
    details: dict[str, Any],
) -> Reply:
    """A second person of the department, a reviewer, approves a public reply (it is queued,
    and an answer makes the inquiry `replied`) or refuses it with a note (never sent)."""
    if reply.status is not ReplyStatus.awaiting_approval:
        raise ReviewConflict(
            f"Reply {reply.id} is {reply.status}: only a reply awaiting approval is reviewed."
        )
    if reviewer is None or (reply.person_id is not None and reviewer.id == reply.person_id):
        raise SecondPersonRequired(
            "A public reply is approved by a reviewer other than its author, with a person's key."
        )
    if approve:
        check_action(inquiry, Action.reply)
        check_not_awaiting_arbitration(inquiry)
        if reply.purpose is ReplyPurpose.answer:
            check_action_for_answer(inquiry)
    reply.status = ReplyStatus.queued if approve else ReplyStatus.rejected
    reply.reviewed_at, reply.reviewed_by, reply.reviewer_person_id = now, actor, reviewer.id
    reply.review_note = note
    record(
        session,
        inquiry,
        actor=actor,
        person_id=reviewer.id,
        action=EventAction.reply_reviewed,
        reason=note,
        details=details | {"reply_id": reply.id, "approved": approve},
    )
    if approve:
        await outbox.enqueue(session, reply)
        await _accept(
            session, inquiry, reply, now=now, actor=actor, person_id=reviewer.id, details=details
        )
    await session.flush()
    return reply


def template_variables(body: str) -> list[str]:
    """The variables a template uses; a BadTemplate for anything but the known ones."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        raise BadTemplate(
            f"The template's braces do not pair up ({exc}): write {{{{ and }}}} for literal braces."
        ) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in VARIABLES or spec or conversion:
            raise BadTemplate(
                f"Unknown variable {{{name}}}: a template may use {{reference}}, {{due_date}} "
                "and {department} (write {{ and }} for literal braces)."
            )
        names.append(name)
    return names


async def templates(session: AsyncSession, department: Department) -> list[ReplyTemplate]:
    return list(
        await session.scalars(
            select(ReplyTemplate)
            .where(ReplyTemplate.department_id == department.id)
            .order_by(ReplyTemplate.code)
        )
    )


async def get_template(session: AsyncSession, department: Department, code: str) -> ReplyTemplate:
    template = await session.scalar(
        select(ReplyTemplate).where(
            ReplyTemplate.department_id == department.id, ReplyTemplate.code == code
        )
    )
    if template is None:
        raise TemplateNotFound(f"No template {code!r} in {department.code}.")
    return template


async def create_template(
    session: AsyncSession, department: Department, *, code: str, title: str, body: str
) -> ReplyTemplate:
    template_variables(body)
    if await session.scalar(
        select(ReplyTemplate.id).where(
            ReplyTemplate.department_id == department.id, ReplyTemplate.code == code
        )
    ):
        raise TemplateExists(f"{department.code} already has a template {code!r}.")
    template = ReplyTemplate(department_id=department.id, code=code, title=title, body=body)
    session.add(template)
    await session.flush()
    return template


def render(template: ReplyTemplate, inquiry: Inquiry, department: Department) -> str:
    """The template with the inquiry's variables filled in; its placeholders stay for the
    responder (a reply that still holds one is refused)."""
    due = inquiry.reply_due_at.astimezone(CHINA).date() if inquiry.reply_due_at else None
    return template.body.format(
        reference=inquiry.reference,
        due_date=f"{due.year}年{due.month}月{due.day}日" if due else "（未定）",
        department=department.name,
    )
