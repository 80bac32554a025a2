from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.accounts.models import Platform
from app.db import Base


class InboxEvent(Base):
    """Every verified delivery from a platform, stored raw, once, before anything else happens.

    `dedupe_key` is built from the platform's own retry identity, so a retry hits the unique
    constraint: WeChat messages `msg:FromUserName:MsgId`, WeChat events
    `event:FromUserName:CreateTime:Event`, Weibo `weibo:sender_id:created_at:sha256(content)`.
    What we answered is kept so every retry gets the same bytes.
    """

    __tablename__ = "inbox_event"
    __table_args__ = (UniqueConstraint("account_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    platform: Mapped[Platform] = mapped_column(Enum(Platform, native_enum=False, length=16))
    dedupe_key: Mapped[str] = mapped_column(String(300))
    sender_id: Mapped[str] = mapped_column(String(128))
    msg_type: Mapped[str] = mapped_column(String(32))  # text, image, …, event, or unknown ones
    event_type: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    payload: Mapped[str] = mapped_column(Text)  # the decrypted XML or the JSON, as received
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("inquiry.id", ondelete="RESTRICT"))
    # The acknowledgement text we answered with (None: plain "success"), and the timestamp and
    # nonce of the encrypted envelope, so a retry is answered byte for byte the same.
    ack_text: Mapped[str | None] = mapped_column(Text)
    reply_timestamp: Mapped[str | None] = mapped_column(String(32))
    reply_nonce: Mapped[str | None] = mapped_column(String(64))
