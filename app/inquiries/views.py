"""One inquiry as a clerk reads it, and who read it: the citizen behind a keyed pseudonym, the
clock with its provenance, the referral and replies. Reads are logged per key at most once an
hour; a read is never a change."""

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account, Platform
from app.deadlines.models import DeadlineExtension, DeadlinePause
from app.delivery import service as outbox
from app.delivery.models import Delivery
from app.departments.models import Department
from app.inquiries.models import Channel, ContentRead, Inquiry
from app.inquiries.schemas import (
    ClockView,
    DeliveryView,
    ExtensionView,
    InquiryDetail,
    InquiryRead,
    MediaView,
    PauseView,
    ReadLogEntry,
    ReferralView,
    ReplyView,
    WindowView,
)
from app.inquiries.service import version
from app.media.models import Media, MediaStatus
from app.people.models import Person
from app.ratings.models import Callback, Rating
from app.ratings.schemas import CallbackView, RatingView
from app.referrals.models import Referral, ReferralEntry
from app.replies.models import Reply
from app.settings import settings

READ_LOG_EVERY = timedelta(hours=1)


def pseudonym(inquiry: Inquiry) -> str:
    """The same citizen on the same account always gets the same name; it reveals nothing of
    the platform id, and differs across accounts."""
    token = settings().admin_token
    key = (token.get_secret_value() if token else "govinbox").encode()
    message = f"{inquiry.account_id}:{inquiry.citizen_id}".encode()
    return "c-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:12]


async def detail(session: AsyncSession, inquiry: Inquiry, *, now: datetime) -> InquiryDetail:
    pauses = await session.scalars(
        select(DeadlinePause)
        .where(DeadlinePause.inquiry_id == inquiry.id)
        .order_by(DeadlinePause.id)
    )
    extension = await session.scalar(
        select(DeadlineExtension).where(DeadlineExtension.inquiry_id == inquiry.id)
    )
    referral = (
        await session.execute(
            select(Referral, ReferralEntry.code)
            .join(ReferralEntry, ReferralEntry.id == Referral.entry_id)
            .where(Referral.inquiry_id == inquiry.id)
        )
    ).first()
    replies = list(
        await session.scalars(
            select(Reply).where(Reply.inquiry_id == inquiry.id).order_by(Reply.id)
        )
    )
    sent: dict[int, list[DeliveryView]] = {}
    for delivery in await session.scalars(
        select(Delivery).where(Delivery.reply_id.in_([r.id for r in replies])).order_by(Delivery.id)
    ):
        sent.setdefault(delivery.reply_id, []).append(
            DeliveryView(
                id=delivery.id,
                via=delivery.via.value,
                status=delivery.status.value,
                error_code=delivery.error_code,
                error=delivery.error,
            )
        )
    base = InquiryRead.model_validate(inquiry).model_dump()
    held = inquiry.assignment
    signer = (
        await session.get(Person, held.signed_by_person_id)
        if held is not None and held.signed_by_person_id is not None
        else None
    )
    survivor = (
        await session.scalar(select(Inquiry.reference).where(Inquiry.id == inquiry.merged_into_id))
        if inquiry.merged_into_id is not None
        else None
    )
    previous = (
        await session.scalar(
            # Only one the same department holds: another's reference is not this one's to see.
            select(Inquiry.reference).where(
                Inquiry.id == inquiry.previous_inquiry_id,
                Inquiry.department_id == inquiry.department_id,
            )
        )
        if inquiry.previous_inquiry_id is not None
        else None
    )
    media = await session.scalars(
        select(Media).where(Media.inquiry_id == inquiry.id).order_by(Media.id)
    )
    ratings = await session.scalars(
        select(Rating).where(Rating.inquiry_id == inquiry.id).order_by(Rating.id)
    )
    callbacks = await session.scalars(
        select(Callback).where(Callback.inquiry_id == inquiry.id).order_by(Callback.id)
    )
    window = None
    if inquiry.channel is Channel.private_message:
        found = await outbox.window(
            session,
            account_id=inquiry.account_id,
            citizen_id=inquiry.citizen_id,
            platform=inquiry.platform,
        )
        notification = (
            await outbox.notification_path(
                session, await session.get_one(Account, inquiry.account_id), inquiry.citizen_id
            )
            if inquiry.platform is Platform.wechat
            else None
        )
        window = WindowView(
            open=found.open(now),
            closes_at=found.closes_at,
            messages_left=found.messages_left,
            next_path=outbox.next_path(found, notification, now=now),
        )
    return InquiryDetail(
        **base,
        window=window,
        citizen=pseudonym(inquiry),
        version=await version(session, inquiry),
        signed_by=signer.name if signer else None,
        signed_at=held.signed_at if held is not None else None,
        merged_into=survivor,
        previous_reference=previous,
        possible_repeat=inquiry.possible_repeat,
        follow_up_at=inquiry.follow_up_at,
        media=[
            MediaView(
                id=m.id,
                seq=m.seq,
                kind=m.kind,
                status=m.status.value,
                content_type=m.content_type,
                size=m.size,
                error_code=m.error_code,
                error=m.error,
                href=f"/api/v1/inquiries/{inquiry.reference}/media/{m.id}"
                if m.status is MediaStatus.stored
                else None,
            )
            for m in media
        ],
        ratings=[RatingView.model_validate(r) for r in ratings],
        callbacks=[CallbackView.model_validate(c) for c in callbacks],
        clock=ClockView(
            first_response_due_at=inquiry.first_response_due_at,
            first_response_from=inquiry.first_response_from,
            first_response_rule_id=inquiry.first_response_rule_id,
            first_response_unit=inquiry.first_response_unit,
            first_response_length=inquiry.first_response_length,
            first_responded_at=inquiry.first_responded_at,
            reply_due_at=inquiry.reply_due_at,
            original_due_at=inquiry.original_due_at,
            deadline_rule_id=inquiry.deadline_rule_id,
            deadline_unit=inquiry.deadline_unit,
            deadline_length=inquiry.deadline_length,
            calendar_version=inquiry.calendar_version,
            due_provisional=inquiry.due_provisional,
            pauses=[
                PauseView(
                    reason=p.reason,
                    status=p.status.value,
                    requested_at=p.requested_at,
                    started_at=p.started_at,
                    ended_at=p.ended_at,
                    working_days_added=p.working_days_added,
                )
                for p in pauses
            ],
            extension=ExtensionView(
                working_days=extension.working_days,
                status=extension.status.value,
                reason=extension.reason,
                requested_at=extension.requested_at,
                decided_at=extension.decided_at,
            )
            if extension
            else None,
        ),
        referral=ReferralView(
            entry_code=referral[1],
            basis=referral[0].basis,
            explanation=referral[0].explanation,
            actor=referral[0].actor,
            created_at=referral[0].created_at,
        )
        if referral
        else None,
        replies=[
            ReplyView.model_validate(r, from_attributes=True).model_copy(
                update={"deliveries": sent.get(r.id, [])}
            )
            for r in replies
        ],
        links={
            "events": f"/api/v1/inquiries/{inquiry.reference}/events",
            "notes": f"/api/v1/inquiries/{inquiry.reference}/notes",
            "merge_candidates": f"/api/v1/inquiries/{inquiry.reference}/merge-candidates",
        },
    )


async def log_read(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    api_key_id: int,
    department: Department,
    actor: str,
    now: datetime,
) -> None:
    """Record that this key read the inquiry's content, unless it did within the hour."""
    recent = await session.scalar(
        select(
            exists().where(
                ContentRead.inquiry_id == inquiry.id,
                ContentRead.api_key_id == api_key_id,
                ContentRead.at > now - READ_LOG_EVERY,
            )
        )
    )
    if not recent:
        session.add(
            ContentRead(
                inquiry_id=inquiry.id,
                api_key_id=api_key_id,
                department_id=department.id,
                actor=actor,
                at=now,
            )
        )


async def reads(session: AsyncSession, inquiry: Inquiry) -> list[ReadLogEntry]:
    rows = await session.execute(
        select(ContentRead.actor, Department.code, ContentRead.at)
        .join(Department, Department.id == ContentRead.department_id)
        .where(ContentRead.inquiry_id == inquiry.id)
        .order_by(ContentRead.at, ContentRead.id)
    )
    return [ReadLogEntry(actor=actor, department_code=code, at=at) for actor, code, at in rows]
