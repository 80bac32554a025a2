"""The outbox. A reply accepted for the platform gets one delivery row per recipient and a durable
job each, in the same transaction. The job commits `sending` before it calls the platform, so a
worker that dies mid-call leaves a row the recovery sweep marks `uncertain`: the platforms take
no idempotency key, so such a row is never sent again blindly, and a known success never is."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import ColumnElement, exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account, AccountType, Follower, Platform
from app.answers.service import answer_link, code_line
from app.comments import service as comments
from app.deadlines.calendar import CHINA
from app.delivery import wechat
from app.delivery.models import Delivery, DeliveryStatus, NotificationGrant, PlatformToken, Via
from app.inquiries.models import Channel, EventAction, Inquiry, InquiryStatus
from app.inquiries.service import lock, record
from app.problems import Conflict, NotFound
from app.replies.models import Reply, ReplyPurpose, ReplyStatus
from app.settings import settings
from app.webhooks.models import InboxEvent

TASK = "deliver_reply"
SWEEPER = "delivery"
FORCED_PER_DAY = 20  # stable_token force_refresh: 20 a day…
FORCED_SPACING = timedelta(seconds=30)  # …30 s apart
EARLY = timedelta(minutes=5)  # a cached token is renewed this long before it expires

_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('routing', :task, :priority, NULL, NULL,"
    " CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)


async def _defer(session: AsyncSession, delivery_id: int, reply_priority: int) -> None:
    """The delivery's job, in the caller's transaction; urgent advice (reply priority 0) runs
    first (procrastinate runs the higher priority first)."""
    await session.execute(
        _DEFER,
        {
            "task": TASK,
            "priority": 10 - reply_priority,
            "args": json.dumps({"delivery_id": delivery_id}),
        },
    )


async def enqueue(session: AsyncSession, reply: Reply) -> list[Delivery]:
    """One delivery per recipient of a reply now `queued`, and its job. An answer also goes to
    the citizens of the repeats merged into its inquiry (并单). Urgent advice goes first."""
    inquiry = await session.get_one(Inquiry, reply.inquiry_id)
    recipients = [inquiry]
    if reply.purpose is ReplyPurpose.answer:
        recipients += list(
            await session.scalars(
                select(Inquiry).where(Inquiry.merged_into_id == inquiry.id).order_by(Inquiry.id)
            )
        )
    rows = [
        Delivery(
            reply_id=reply.id,
            inquiry_id=recipient.id,
            account_id=recipient.account_id,
            citizen_id=recipient.citizen_id,
            status=DeliveryStatus.queued,
        )
        for recipient in recipients
    ]
    session.add_all(rows)
    await session.flush()
    for row in rows:
        await _defer(session, row.id, reply.priority)
    return rows


@dataclass(frozen=True)
class Job:
    """What one delivery needs from the database, read when it was marked `sending`."""

    delivery_id: int
    account_id: int
    platform: Platform
    channel: Channel
    app_id: str | None
    secret: str | None
    weibo_token: str | None
    citizen_id: str
    text: str
    attempt: int  # the row's `attempts` when this job claimed it: its outcome is this attempt's
    via: Via = Via.message
    # A notification's template, its keywords' values and its link (the answer page).
    template_id: str | None = None
    data: dict[str, str] | None = None
    link: str | None = None
    # A public reply to a comment: where it goes (msg_data_id, index, user_comment_id).
    comment: tuple[str, int, str] | None = None


async def claim(session: AsyncSession, delivery_id: int, *, now: datetime) -> Job | None:
    """Mark a queued delivery `sending` (committed by the caller before the platform call).
    Anything else is left alone: delivered, failed, awaiting its window, or `sending` already
    (another worker, or one that died: the recovery sweep decides)."""
    row = await _locked(session, delivery_id)
    if row is None or row.status is not DeliveryStatus.queued:
        return None
    account = await session.get_one(Account, row.account_id)
    reply = await session.get_one(Reply, row.reply_id)
    recipient = await session.get_one(Inquiry, row.inquiry_id)
    if (
        row.via is not Via.subscribe  # 服务通知 reaches non-followers too
        and recipient.channel is Channel.private_message  # a public reply needs no follower
        and await _unfollowed(session, row.account_id, row.citizen_id)
    ):
        await settle(session, row.id, DeliveryStatus.failed, now=now, code=UNFOLLOWED, error=GONE)
        return None
    if row.via is not Via.message:
        # A notification is not bound to the customer-service window.
        return await _sending(
            session,
            row,
            account,
            recipient,
            reply.text,
            now=now,
            via=row.via,
            template_id=(
                account.subscribe_template_id if row.via is Via.subscribe else account.template_id
            ),
            data=notification_data(account, recipient, reply, row.via),
            link=answer_link(recipient.reference, recipient.query_code),
        )
    if recipient.channel is Channel.private_message:
        # Planned for, not found out: a closed window is never tried (it would only be 45015).
        open_now = await window(
            session, account_id=row.account_id, citizen_id=row.citizen_id, platform=account.platform
        )
        if not open_now.open(now):
            why = "quota_used" if open_now.messages_left == 0 else "window_closed"
            if reply.purpose is ReplyPurpose.holding:  # only of use inside the window
                await settle(
                    session,
                    row.id,
                    DeliveryStatus.failed,
                    now=now,
                    code=why,
                    error="a holding reply is never deferred: the window it was for has closed",
                )
                return None
            await settle(
                session,
                row.id,
                DeliveryStatus.awaiting_window,
                now=now,
                code=why,
                error="it goes out when the citizen next writes",
            )
            return None
    comment = (
        await comments.target(session, recipient.id)
        if recipient.channel is Channel.comment
        else None
    )
    outbound = reply.text
    if recipient.channel is Channel.private_message and (
        reply.purpose is ReplyPurpose.holding or not await _code_given(session, row)
    ):
        outbound += code_line(recipient.reference, recipient.query_code)
    return await _sending(session, row, account, recipient, outbound, now=now, comment=comment)


async def _sending(
    session: AsyncSession,
    row: Delivery,
    account: Account,
    recipient: Inquiry,
    text: str,
    *,
    now: datetime,
    **path: Any,
) -> Job:
    """The row marked `sending` (one more attempt), and what its job needs to send `text`."""
    row.status, row.sending_at, row.attempts = DeliveryStatus.sending, now, row.attempts + 1
    await session.flush()
    return Job(
        row.id,
        account.id,
        account.platform,
        recipient.channel,
        account.wechat_app_id,
        account.wechat_app_secret,
        account.weibo_access_token,
        row.citizen_id,
        text,
        row.attempts,
        **path,
    )


async def _code_given(session: AsyncSession, row: Delivery) -> bool:
    """Whether the citizen already has this inquiry's query code: its acknowledgement carried
    it, or an earlier reply sent as a message did (the first one adds it; a public comment
    never gets one)."""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    InboxEvent.inquiry_id == row.inquiry_id, InboxEvent.ack_text.is_not(None)
                )
                | exists().where(
                    Delivery.inquiry_id == row.inquiry_id,
                    Delivery.via == Via.message,
                    Delivery.id != row.id,
                    Delivery.status.in_(_SENT),
                )
            )
        )
    )


class Credentials(Protocol):
    """What the token needs of a job: the account and its AppID and AppSecret."""

    @property
    def account_id(self) -> int: ...
    @property
    def app_id(self) -> str | None: ...
    @property
    def secret(self) -> str | None: ...


async def token(
    session: AsyncSession,
    http: httpx.AsyncClient,
    job: Credentials,
    *,
    now: datetime,
    force: bool,
) -> str:
    """The account's access token, shared by every worker through its row (locked while it is
    fetched, so only one worker asks). `force` after the platform refused the cached one."""
    await session.execute(
        text("INSERT INTO platform_token (account_id) VALUES (:account) ON CONFLICT DO NOTHING"),
        {"account": job.account_id},
    )
    cached = await session.scalar(
        select(PlatformToken)
        .where(PlatformToken.account_id == job.account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert cached is not None
    usable = cached.access_token and cached.expires_at and cached.expires_at - EARLY > now
    if usable and not force:
        return str(cached.access_token)
    today = now.astimezone(CHINA).date()
    forced_before = cached.forced_at is not None and cached.forced_at.astimezone(CHINA).date()
    forced_today = cached.forced_today if forced_before == today else 0
    may_force = forced_today < FORCED_PER_DAY and (
        cached.forced_at is None or now - cached.forced_at >= FORCED_SPACING
    )
    fresh = await wechat.stable_token(
        http,
        settings().wechat_api_base,
        app_id=job.app_id or "",
        secret=job.secret or "",
        force=force and may_force,
    )
    cached.access_token = fresh.access_token
    cached.expires_at = now + timedelta(seconds=fresh.expires_in)
    cached.fetched_at = now
    if force and may_force:
        cached.forced_at, cached.forced_today = now, forced_today + 1
    await session.flush()
    return fresh.access_token


_EVENTS = {
    DeliveryStatus.delivered: EventAction.reply_delivered,
    DeliveryStatus.awaiting_window: EventAction.delivery_waiting,
    DeliveryStatus.failed: EventAction.delivery_failed,
    DeliveryStatus.uncertain: EventAction.delivery_uncertain,
}


async def _locked(session: AsyncSession, delivery_id: int) -> Delivery | None:
    """A delivery under its row lock, its inquiry's row locked first: every path that changes
    both (the job, the sweep, the department's resend and confirm) locks them in that order."""
    inquiry_id = await session.scalar(select(Delivery.inquiry_id).where(Delivery.id == delivery_id))
    if inquiry_id is None:
        return None
    await lock(session, await session.get_one(Inquiry, inquiry_id))
    return await session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def settle(
    session: AsyncSession,
    delivery_id: int,
    status: DeliveryStatus,
    *,
    now: datetime,
    code: str | None = None,
    error: str = "",
    attempt: int | None = None,
) -> None:
    """Record what the platform said, and tell the inquiry (an event, so the department's feed
    shows it), under the inquiry's row lock like every other change of it. With `attempt`, the
    outcome of that attempt only: an answer that comes after the row moved on (recovered as
    uncertain, resent, delivered by another attempt) changes nothing, except that a late success
    settles an uncertain row."""
    row = await _locked(session, delivery_id)
    assert row is not None  # deliveries are never deleted
    if attempt is not None and (
        row.status is not DeliveryStatus.sending or row.attempts != attempt
    ):
        late_success = status is DeliveryStatus.delivered and row.status is DeliveryStatus.uncertain
        if not late_success:
            return
    inquiry = await session.get_one(Inquiry, row.inquiry_id)
    row.status, row.error_code, row.error = status, code, error
    if status is DeliveryStatus.delivered:
        row.delivered_at = now
    if status is DeliveryStatus.queued:  # busy: the job runs again later
        await session.flush()
        return
    if status is DeliveryStatus.awaiting_window and row.via is Via.message:
        await _notify(session, row)
    if status is DeliveryStatus.delivered:
        await _answered(session, row, now=now)
    if row.via is Via.subscribe and status is DeliveryStatus.failed and code == REFUSED:
        # The citizen cancelled the subscription: the platform's word is the latest decision,
        # and the next rung (a template message) is tried.
        await _withdraw_grant(session, row, now=now)
        await _notify(session, row)
    record(
        session,
        inquiry,
        actor=SWEEPER,
        action=_EVENTS[status],
        reason=f"{code} {error}".strip(),
        details={"reply_id": row.reply_id, "delivery_id": row.id},
    )
    await session.flush()


async def recover(session: AsyncSession, *, now: datetime) -> int:
    """Deliveries left `sending` longer than any call can take (a worker died, or lost its
    connection, mid-call) become `uncertain`: the platform may have sent them. Queued ones
    whose job is gone get a new one. Returns how many of both."""
    stale = list(
        await session.scalars(
            select(Delivery.id)
            .where(
                Delivery.status == DeliveryStatus.sending,
                Delivery.sending_at
                < now - timedelta(seconds=settings().delivery_sending_timeout_seconds),
            )
            .order_by(Delivery.id)
        )
    )
    settled = 0
    for delivery_id in stale:
        row = await _locked(session, delivery_id)
        if row is None or row.status is not DeliveryStatus.sending:
            continue  # settled meanwhile by its own job
        await settle(
            session,
            delivery_id,
            DeliveryStatus.uncertain,
            now=now,
            code="unknown",
            error="the worker stopped during the platform call: it may have been sent",
        )
        settled += 1
    # A queued delivery whose job is gone (it failed for good: an outage longer than its
    # backoff, a bug) gets a new one: nothing waits for ever unseen.
    orphans = (await session.execute(_ORPHANS, {"before": now - ORPHAN_GRACE, "task": TASK})).all()
    for delivery_id, priority in orphans:
        await _defer(session, delivery_id, priority)
    return settled + len(orphans)


ORPHAN_GRACE = timedelta(minutes=10)
_ORPHANS = text(
    """
    SELECT d.id, r.priority FROM delivery d JOIN reply r ON r.id = d.reply_id
     WHERE d.status = 'queued' AND d.updated_at < :before
       AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.task_name = :task AND j.status IN ('todo', 'doing')
                          AND j.args ->> 'delivery_id' = d.id::text)
     ORDER BY d.id
     LIMIT 500
    """
)


class AnswerNotDelivered(Conflict):
    title = "The answer has not reached the citizen"
    slug = "answer-not-delivered"
    example_detail = (
        "WX20261124-000123's answer is failed (43004 require subscribe): resend it, or record "
        "that it was given by phone, letter or in person, then close."
    )


async def check_answer_reached(session: AsyncSession, inquiry: Inquiry) -> None:
    """办结 needs the answer delivered to the inquiry's citizen, or given by another channel."""
    reached = await session.scalar(
        select(
            exists().where(
                Reply.inquiry_id == inquiry.id,
                Reply.purpose == ReplyPurpose.answer,
                Reply.status == ReplyStatus.given,
            )
            | exists().where(
                Delivery.inquiry_id == inquiry.id,
                Delivery.status == DeliveryStatus.delivered,
                Delivery.reply_id == Reply.id,
                Reply.purpose == ReplyPurpose.answer,
            )
        )
    )
    if reached:
        return
    last = await session.scalar(
        select(Delivery)
        .join(Reply, Reply.id == Delivery.reply_id)
        .where(Delivery.inquiry_id == inquiry.id, Reply.purpose == ReplyPurpose.answer)
        .order_by(Delivery.id.desc())
        .limit(1)
    )
    state = (
        f"is {last.status}"
        + (f" ({last.error_code} {last.error})".rstrip() if last.error_code else "")
        if last
        else "was not sent"
    )
    raise AnswerNotDelivered(
        f"{inquiry.reference}'s answer {state}: resend it, or record that it was given by phone, "
        "letter or in person, then close.",
        delivery_status=last.status.value if last else None,
    )


class DeliveryNotFound(NotFound):
    title = "Delivery not found"
    slug = "delivery-not-found"
    example_detail = "No delivery 42 on WX20261124-000123."


class DeliveryConflict(Conflict):
    title = "Delivery cannot be changed so"
    slug = "delivery-conflict"
    example_detail = "Delivery 42 is delivered: a known success is never sent again."


async def get_delivery(session: AsyncSession, inquiry: Inquiry, delivery_id: int) -> Delivery:
    """A delivery of one of the inquiry's replies (its own citizen's, or a merged repeat's)."""
    ours = await session.scalar(
        select(Delivery.id)
        .join(Reply, Reply.id == Delivery.reply_id)
        .where(Delivery.id == delivery_id, Reply.inquiry_id == inquiry.id)
    )
    found = await _locked(session, ours) if ours is not None else None
    if found is None:
        raise DeliveryNotFound(f"No delivery {delivery_id} on {inquiry.reference}.")
    return found


async def resend(
    session: AsyncSession,
    inquiry: Inquiry,
    delivery: Delivery,
    *,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Delivery:
    """The department sends again what failed, waits for its window, or is uncertain (having
    checked that the citizen did not get it): queued, with a new job."""
    if delivery.status not in (
        DeliveryStatus.failed,
        DeliveryStatus.awaiting_window,
        DeliveryStatus.uncertain,
    ):
        raise DeliveryConflict(
            f"Delivery {delivery.id} is {delivery.status}: only a failed, waiting or uncertain "
            "one is sent again."
        )
    previous = delivery.status
    delivery.status, delivery.error_code, delivery.error = DeliveryStatus.queued, None, ""
    reply = await session.get_one(Reply, delivery.reply_id)
    await _defer(session, delivery.id, reply.priority)
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.delivery_resent,
        details=details | {"delivery_id": delivery.id, "was": previous.value},
    )
    await session.flush()
    return delivery


async def confirm(
    session: AsyncSession,
    inquiry: Inquiry,
    delivery: Delivery,
    *,
    note: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Delivery:
    """The department checked that an uncertain send did reach the citizen: delivered."""
    if delivery.status is not DeliveryStatus.uncertain:
        raise DeliveryConflict(
            f"Delivery {delivery.id} is {delivery.status}: only an uncertain one is confirmed."
        )
    delivery.status, delivery.delivered_at = DeliveryStatus.delivered, now
    delivery.error_code, delivery.error = "confirmed", note
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.reply_delivered,
        reason=note,
        details=details | {"delivery_id": delivery.id, "confirmed": True},
    )
    await session.flush()
    return delivery


@dataclass(frozen=True)
class Window:
    """The customer-service window to one citizen on one account: open from the citizen's last
    message for WECHAT_WINDOW_HOURS (48), for WECHAT_WINDOW_MESSAGES (5) messages, holding
    replies included; a closed one reopens when the citizen writes again."""

    last_message_at: datetime | None
    closes_at: datetime | None
    messages_left: int

    def open(self, now: datetime) -> bool:
        return self.closes_at is not None and now < self.closes_at and self.messages_left > 0


_SENT = (DeliveryStatus.delivered, DeliveryStatus.sending, DeliveryStatus.uncertain)


async def window(
    session: AsyncSession, *, account_id: int, citizen_id: str, platform: Platform
) -> Window:
    """Derived from the facts each time: the citizen's latest message on the account (over all
    their inquiries there) and what was sent to them since."""
    config = settings()
    in_inquiries = await session.scalar(
        select(func.max(Inquiry.last_message_at)).where(
            Inquiry.account_id == account_id,
            Inquiry.citizen_id == citizen_id,
            Inquiry.channel == Channel.private_message,  # a comment opens no window
        )
    )
    # Intake keeps the citizen's latest private message here too: "查询" and rating digits,
    # which join no inquiry, open the window as much as any message.
    follower = await session.scalar(
        select(Follower.last_message_at).where(
            Follower.account_id == account_id, Follower.citizen_id == citizen_id
        )
    )
    last = max((t for t in (in_inquiries, follower) if t is not None), default=None)
    if last is None:
        return Window(None, None, 0)
    if platform is Platform.wechat:
        hours, quota = config.wechat_window_hours, config.wechat_window_messages
    else:
        own = await session.scalar(
            select(Account.weibo_window_hours).where(Account.id == account_id)
        )
        hours, quota = own or config.weibo_window_hours, config.weibo_window_messages
    used = await session.scalar(
        select(func.count()).where(
            Delivery.account_id == account_id,
            Delivery.citizen_id == citizen_id,
            Delivery.via == Via.message,  # notifications are not customer-service messages
            Delivery.status.in_(_SENT),
            Delivery.sending_at >= last,
        )
    )
    return Window(last, last + timedelta(hours=hours), max(0, quota - int(used or 0)))


async def wake(session: AsyncSession, *, account_id: int, citizen_id: str) -> int:
    """The citizen wrote again (whether the message joined an inquiry or opened one): what
    waited for the window goes out now, most urgent first. Returns how many."""
    waiting = (
        await session.execute(
            select(Delivery, Reply.priority)
            .join(Reply, Reply.id == Delivery.reply_id)
            .where(
                Delivery.account_id == account_id,
                Delivery.citizen_id == citizen_id,
                Delivery.via == Via.message,
                Delivery.status == DeliveryStatus.awaiting_window,
            )
            .order_by(Reply.priority, Delivery.id)
            .with_for_update(of=Delivery, skip_locked=True)
        )
    ).all()
    for row, priority in waiting:
        row.status = DeliveryStatus.queued
        await _defer(session, row.id, priority)
    await session.flush()
    return len(waiting)


HOLDING_AUTHOR = "system:holding-reply"

# Open private-message inquiries whose citizen's window closes within the lead time, with no
# answer accepted and no holding reply since the citizen's last message.
_CLOSING = text(
    """
    SELECT i.id FROM inquiry i
     WHERE i.status IN ('new', 'assigned') AND i.channel = 'private_message'
       AND i.platform = 'wechat' AND i.department_id IS NOT NULL
       AND i.last_message_at <= :closes_from AND i.last_message_at > :closes_until
       AND NOT EXISTS (SELECT 1 FROM reply r
                        WHERE r.inquiry_id = i.id AND r.purpose IN ('holding', 'answer')
                          AND r.status IN ('queued', 'given') AND r.created_at >= i.last_message_at)
     ORDER BY i.id
     LIMIT 500
    """
)


def holding_text(inquiry: Inquiry) -> str:
    """The holding reply: the reference and the due date (the answer page's code and link are
    added when it is sent, never stored where the department API shows replies)."""
    due = inquiry.reply_due_at.astimezone(CHINA).date() if inquiry.reply_due_at else None
    return settings().holding_reply_text.format(
        reference=inquiry.reference,
        due_date=f"{due.year}年{due.month}月{due.day}日" if due else "办理期限内",
    )


async def send_holding_replies(session: AsyncSession, *, now: datetime) -> int:
    """Before a window closes on an unanswered inquiry: a holding reply (the reference, the due
    date, an invitation to write back, which renews the window), and the department warned (an
    event, so its feed and push show it). Automatic: it meets no due, and is never an answer."""
    config = settings()
    if not config.holding_reply_enabled:
        return 0
    window = timedelta(hours=config.wechat_window_hours)
    lead = timedelta(hours=config.holding_reply_lead_hours)
    ids = list(
        await session.scalars(
            _CLOSING, {"closes_from": now - window + lead, "closes_until": now - window}
        )
    )
    for inquiry_id in ids:
        inquiry = await lock(session, await session.get_one(Inquiry, inquiry_id))
        answered = await session.scalar(
            select(
                exists().where(
                    Reply.inquiry_id == inquiry.id,
                    Reply.purpose.in_([ReplyPurpose.answer, ReplyPurpose.holding]),
                    Reply.status.in_([ReplyStatus.queued, ReplyStatus.given]),
                    Reply.created_at >= inquiry.last_message_at,
                )
            )
        )
        if inquiry.status not in (InquiryStatus.new, InquiryStatus.assigned) or answered:
            continue  # answered (or ended) between the query and the lock
        reply = Reply(
            inquiry_id=inquiry.id,
            text=holding_text(inquiry),
            purpose=ReplyPurpose.holding,
            priority=1,
            author=HOLDING_AUTHOR,
        )
        session.add(reply)
        await session.flush()
        await enqueue(session, reply)
        record(
            session,
            inquiry,
            actor=HOLDING_AUTHOR,
            action=EventAction.window_closing,
            reason="the platform's window closes soon: a holding reply is queued; an answer "
            "after it waits for the citizen's next message",
            details={"reply_id": reply.id},
        )
    await session.flush()
    return len(ids)


# What "the answer is ready" is said for: the substantive answer and a referral.
_NOTIFIED = (ReplyPurpose.answer, ReplyPurpose.referral)


async def notification_path(session: AsyncSession, account: Account, citizen_id: str) -> Via | None:
    """The rung below the message, where the window has closed (docs/platforms.md, "The
    ladder"): a subscription notification where the account has its template and the citizen
    accepted it (a one-time grant carries one notification), else a template message where the
    account may send them (a verified service account with a template) and the citizen has not
    unfollowed; None: the answer page alone."""
    if account.account_type is not AccountType.wechat_service:
        return None
    if account.subscribe_template_id:
        grant = await session.get(
            NotificationGrant, (account.id, citizen_id, account.subscribe_template_id)
        )
        if grant is not None and grant.accepted:
            used = not account.subscribe_long_term and await session.scalar(
                select(
                    exists().where(
                        Delivery.account_id == account.id,
                        Delivery.citizen_id == citizen_id,
                        Delivery.via == Via.subscribe,
                        Delivery.status.in_(_SENT),
                        Delivery.sending_at >= grant.decided_at,
                    )
                )
            )
            if not used:
                return Via.subscribe
    if account.template_id and account.verified:
        follower = await session.get(Follower, (account.id, citizen_id))
        if follower is None or follower.subscribed is not False:
            return Via.template
    return None


async def _notify(session: AsyncSession, row: Delivery) -> None:
    """An answer (or referral) found the window closed: it waits for the citizen's next message,
    and meanwhile a notification says it is ready and links to the answer page (once per
    delivery)."""
    reply = await session.get_one(Reply, row.reply_id)
    account = await session.get_one(Account, row.account_id)
    if reply.purpose not in _NOTIFIED or account.platform is not Platform.wechat:
        return
    via = await notification_path(session, account, row.citizen_id)
    if via is None:
        return
    planned = await session.scalar(
        select(
            exists().where(
                Delivery.reply_id == row.reply_id,
                Delivery.inquiry_id == row.inquiry_id,
                Delivery.via == via,
            )
            | exists().where(
                Delivery.reply_id == row.reply_id,
                Delivery.inquiry_id == row.inquiry_id,
                Delivery.via != Via.message,
                Delivery.status != DeliveryStatus.failed,
            )
        )
    )
    if planned:
        return
    notification = Delivery(
        reply_id=row.reply_id,
        inquiry_id=row.inquiry_id,
        account_id=row.account_id,
        citizen_id=row.citizen_id,
        via=via,
        status=DeliveryStatus.queued,
    )
    session.add(notification)
    await session.flush()
    await _defer(session, notification.id, reply.priority)


REFUSED = "43101"  # bizsend: the citizen refused (cancelled) the subscription


async def _withdraw_grant(session: AsyncSession, row: Delivery, *, now: datetime) -> None:
    """Unless the citizen decided again after this notification was sent."""
    account = await session.get_one(Account, row.account_id)
    await session.execute(
        update(NotificationGrant)
        .where(
            NotificationGrant.account_id == row.account_id,
            NotificationGrant.citizen_id == row.citizen_id,
            NotificationGrant.template_id == (account.subscribe_template_id or ""),
            NotificationGrant.decided_at <= (row.sending_at or now),
        )
        .values(accepted=False, decided_at=now)
        .execution_options(synchronize_session=False)
    )


# A `phrase` keyword takes at most 5 characters.
_STATUS_WORD = {ReplyPurpose.answer: "已答复", ReplyPurpose.referral: "已告知"}


def notification_data(account: Account, inquiry: Inquiry, reply: Reply, via: Via) -> dict[str, str]:
    """The template's keywords with {reference}, {status} and {date} filled in (plain
    replacement: the texts are the admin's, never format strings)."""
    when = reply.created_at.astimezone(CHINA)
    values = {
        "{reference}": inquiry.reference,
        "{status}": _STATUS_WORD.get(reply.purpose, "有新进展"),
        "{date}": f"{when.year}年{when.month}月{when.day}日 {when:%H:%M}",
    }
    config = settings()
    fields = (
        account.subscribe_fields or config.subscribe_fields
        if via is Via.subscribe
        else account.template_fields or config.template_fields
    )
    data = {}
    for keyword, template in fields.items():
        for placeholder, value in values.items():
            template = template.replace(placeholder, value)
        data[keyword] = template
    return data


def next_path(window: Window, notification: Via | None, *, now: datetime) -> str:
    """How the inquiry's next reply reaches the citizen, for the view."""
    if window.open(now):
        return "message"
    return notification.value if notification is not None else "answer_page"


UNFOLLOWED = "unfollowed"
GONE = (
    "the citizen unfollowed the account: nothing more can be sent there; reach them by phone or "
    "letter, and record the answer as given"
)


async def _unfollowed(session: AsyncSession, account_id: int, citizen_id: str) -> bool:
    follower = await session.get(Follower, (account_id, citizen_id))
    return follower is not None and follower.subscribed is False


def _reachable_only_privately(account_id: int, citizen_id: str) -> tuple[ColumnElement[bool], ...]:
    """The citizen's open private-message inquiries on the account: what an unfollow cuts off
    (a comment's public reply needs no follower)."""
    return (
        Inquiry.account_id == account_id,
        Inquiry.citizen_id == citizen_id,
        Inquiry.channel == Channel.private_message,
        Inquiry.status.in_([InquiryStatus.new, InquiryStatus.assigned, InquiryStatus.replied]),
    )


async def unfollowed(
    session: AsyncSession, *, account_id: int, citizen_id: str, now: datetime
) -> int:
    """The citizen unfollowed the account (intake queued this): every delivery waiting for them
    there fails, visibly (an event each: feed, push), and their open inquiries say so. Nothing
    happens if they followed again meanwhile. Returns how many deliveries failed."""
    if not await _unfollowed(session, account_id, citizen_id):
        return 0
    waiting = list(
        await session.scalars(
            select(Delivery.id)
            .join(Inquiry, Inquiry.id == Delivery.inquiry_id)
            .where(
                Delivery.account_id == account_id,
                Delivery.citizen_id == citizen_id,
                Delivery.via != Via.subscribe,  # 服务通知 reaches non-followers too
                Delivery.status.in_([DeliveryStatus.queued, DeliveryStatus.awaiting_window]),
                Inquiry.channel == Channel.private_message,  # a public reply needs no follower
            )
            .order_by(Delivery.id)
        )
    )
    # Every inquiry either loop touches, first, by id (as every writer of several inquiries
    # locks them), then each delivery after its inquiry.
    touched = set(
        await session.scalars(select(Delivery.inquiry_id).where(Delivery.id.in_(waiting)))
    ) | set(
        await session.scalars(
            select(Inquiry.id).where(*_reachable_only_privately(account_id, citizen_id))
        )
    )
    for inquiry_id in sorted(touched):
        await lock(session, await session.get_one(Inquiry, inquiry_id))
    failed = 0
    for delivery_id in waiting:
        row = await _locked(session, delivery_id)
        if row is None or row.status not in (DeliveryStatus.queued, DeliveryStatus.awaiting_window):
            continue
        await settle(session, row.id, DeliveryStatus.failed, now=now, code=UNFOLLOWED, error=GONE)
        failed += 1
    for inquiry in await session.scalars(
        select(Inquiry).where(*_reachable_only_privately(account_id, citizen_id))
    ):
        record(
            session,
            await lock(session, inquiry),
            actor=SWEEPER,
            action=EventAction.citizen_unfollowed,
            reason=GONE,
            details={"deliveries_failed": failed},
        )
    await session.flush()
    return failed


RATING_AUTHOR = "system:rating-prompt"
REMINDER_AUTHOR = "system:rating-reminder"


async def _answered(session: AsyncSession, row: Delivery, *, now: datetime) -> None:
    """A delivery reached the citizen. An answer to a private message: they are asked to rate
    it, once. A rating prompt: digits count as a rating from now, when they can see it (a
    prompt can wait days for the citizen's window). The caller holds the inquiry's lock."""
    reply = await session.get_one(Reply, row.reply_id)
    inquiry = await session.get_one(Inquiry, row.inquiry_id)
    if reply.purpose is ReplyPurpose.rating_prompt and reply.author == RATING_AUTHOR:
        inquiry.rating_prompted_at, inquiry.rating_reminded_at = now, None
        return
    if (
        reply.purpose is ReplyPurpose.answer
        and inquiry.channel is Channel.private_message
        and not await session.scalar(
            select(
                exists().where(
                    Reply.inquiry_id == inquiry.id, Reply.purpose == ReplyPurpose.rating_prompt
                )
            )
        )
    ):
        await prompt_rating(session, inquiry, now=now)


async def prompt_rating(
    session: AsyncSession, inquiry: Inquiry, *, now: datetime, reminder: bool = False
) -> Reply:
    """Queue the rating prompt (RATING_PROMPT_TEXT) or its reminder (RATING_REMINDER_TEXT). Two
    digits count as a rating for RATING_WINDOW_DAYS from when the prompt reaches the citizen
    (`_answered`); the reminder keeps that window. The caller holds the inquiry's lock."""
    config = settings()
    reply = Reply(
        inquiry_id=inquiry.id,
        text=(config.rating_reminder_text if reminder else config.rating_prompt_text).format(
            reference=inquiry.reference
        ),
        purpose=ReplyPurpose.rating_prompt,
        priority=9,
        author=REMINDER_AUTHOR if reminder else RATING_AUTHOR,
    )
    session.add(reply)
    await session.flush()
    await enqueue(session, reply)
    if reminder:
        inquiry.rating_reminded_at = now
    await session.flush()
    return reply
