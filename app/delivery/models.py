import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamped


class DeliveryStatus(enum.StrEnum):
    queued = "queued"  # waits for the worker
    sending = "sending"  # committed before the platform call: never sent blindly again
    delivered = "delivered"  # the platform said ok
    awaiting_window = "awaiting_window"  # the customer-service window is closed (45015, 45047)
    failed = "failed"  # the platform refused it for good (40003, 43004, …), the reason kept
    uncertain = "uncertain"  # the worker died mid-call: the department confirms or resends


class Via(enum.StrEnum):
    """The path a delivery takes (the ladder: docs/platforms.md)."""

    message = "message"  # the reply itself: customer-service message, Weibo reply
    subscribe = "subscribe"  # a subscription notification: the answer is ready, with the link
    template = "template"  # a template message saying the same


class Delivery(Timestamped, Base):
    """One reply to one citizen: a merged inquiry's answer makes one row per citizen, each with
    its own account and window. The outbox the delivery job works through."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("reply_id", "inquiry_id", "via"),
        # The recovery sweep's rows: sends a dead worker left behind.
        Index("ix_delivery_sending", "sending_at", postgresql_where=text("status = 'sending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("reply.id", ondelete="RESTRICT"), index=True)
    # The recipient's own inquiry (a merged repeat's, for its citizen), account and platform id.
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    citizen_id: Mapped[str] = mapped_column(String(128))
    via: Mapped[Via] = mapped_column(
        Enum(Via, native_enum=False, length=16), server_default=Via.message.value
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16), default=DeliveryStatus.queued
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    sending_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The platform's word on the last attempt: its errcode and errmsg, or what went wrong.
    error_code: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, server_default="")


class PlatformToken(Base):
    """One access token per account, shared by every worker: fetched from WeChat's stable-token
    endpoint under this row's lock, refreshed on 40001/40014/42001 within the forced-refresh
    limits (20 a day, 30 s apart)."""

    __tablename__ = "platform_token"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    access_token: Mapped[str | None] = mapped_column(String(1024))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    forced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Forced refreshes on the (Beijing) day of forced_at.
    forced_today: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class NotificationGrant(Base):
    """A citizen's latest decision on an account's subscription-notification template
    (subscribe_msg_popup_event, subscribe_msg_change_event), written by intake."""

    __tablename__ = "notification_grant"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    citizen_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    template_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    accepted: Mapped[bool] = mapped_column(Boolean)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
