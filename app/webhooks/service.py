"""Store a verified platform delivery in one statement; the platforms' own keys decide races."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.accounts.models import Account, Platform
from app.inquiries.models import Channel


class Rejected(Exception):
    """A webhook request we refuse; answered in the platform's convention, never as `success`."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason  # a short label for logs and metrics
        self.detail = detail


@dataclass(frozen=True)
class WebhookAccount:
    """What a webhook needs of an account, read with one plain query (no ORM on the hot path)."""

    id: int
    code: str
    platform: Platform
    wechat_token: str | None
    wechat_encoding_aes_key: str | None
    wechat_previous_encoding_aes_key: str | None
    wechat_app_id: str | None
    wechat_original_id: str | None
    weibo_uid: str | None
    weibo_app_secret: str | None
    ack_enabled: bool
    ack_text: str


ACCOUNT_QUERY = select(*(getattr(Account, name) for name in WebhookAccount.__dataclass_fields__))


async def account(connection: AsyncConnection, platform: Platform, code: str) -> WebhookAccount:
    """The active account a webhook URL names; Rejected (404) if there is none."""
    row = (
        await connection.execute(
            ACCOUNT_QUERY.where(Account.code == code, Account.platform == platform, Account.active)
        )
    ).one_or_none()
    if row is None:
        raise Rejected(404, "unknown_account", f"no active {platform} account {code!r}")
    return WebhookAccount(**row._asdict())


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
    # The request's timestamp and nonce, kept for an encrypted acknowledgement's envelope.
    reply_timestamp: str | None = None
    reply_nonce: str | None = None


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
    connection: AsyncConnection,
    account: WebhookAccount,
    delivery: Delivery,
    *,
    now: datetime,
    open_window: timedelta,
) -> Stored:
    """Store the raw delivery once and thread it into an inquiry; queue its routing job."""
    row = (
        await connection.execute(
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
                "reply_timestamp": delivery.reply_timestamp,
                "reply_nonce": delivery.reply_nonce,
            },
        )
    ).one()
    return Stored(**row._asdict())
