"""Store a verified platform delivery in one statement; the platforms' own keys decide races."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.inquiries.models import Channel


class Rejected(Exception):
    """A webhook request we refuse; answered in the platform's convention, never as `success`."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason  # a short label for logs and metrics
        self.detail = detail


@dataclass(frozen=True)
class Delivery:
    """One message or event from a platform, verified and normalised."""

    dedupe_key: str  # the platform's retry identity (see InboxEvent)
    sender_id: str
    msg_type: str
    event_type: str | None  # 'subscribe' / 'unsubscribe' normalised across platforms
    sent_at: datetime
    payload: str
    content: str | None  # what the citizen asked, as text; None when nothing was asked
    platform_msg_id: str | None = None
    channel: Channel = Channel.private_message


@dataclass(frozen=True)
class Stored:
    """What intake did with a delivery, and what to answer (the same for every retry)."""

    inbox_event_id: int
    duplicate: bool
    inquiry_id: int | None
    reference: str | None
    opened: bool
    ack_text: str | None
    reply_timestamp: str | None
    reply_nonce: str | None


_INTAKE = text(
    "SELECT * FROM govinbox_intake(:account_id, :platform, :dedupe_key, :sender_id, :msg_type,"
    " :event_type, :sent_at, :payload, :content, :platform_msg_id, :channel, :now,"
    " :open_window, :ack_template, :reply_timestamp, :reply_nonce)"
)


async def store(
    session: AsyncSession,
    account: Account,
    delivery: Delivery,
    *,
    now: datetime,
    open_window: timedelta,
    reply_timestamp: str | None = None,
    reply_nonce: str | None = None,
) -> Stored:
    """Store the raw delivery once and thread it into an inquiry; queue its routing job."""
    row = (
        await session.execute(
            _INTAKE,
            {
                "account_id": account.id,
                "platform": account.platform.value,
                "dedupe_key": delivery.dedupe_key,
                "sender_id": delivery.sender_id,
                "msg_type": delivery.msg_type,
                "event_type": delivery.event_type,
                "sent_at": delivery.sent_at,
                "payload": delivery.payload,
                "content": delivery.content,
                "platform_msg_id": delivery.platform_msg_id,
                "channel": delivery.channel.value,
                "now": now,
                "open_window": open_window,
                "ack_template": account.ack_text if account.ack_enabled else None,
                "reply_timestamp": reply_timestamp,
                "reply_nonce": reply_nonce,
            },
        )
    ).one()
    return Stored(**row._asdict())
