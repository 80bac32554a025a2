import enum

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamped


class ReplyPurpose(enum.StrEnum):
    urgent_advice = "urgent_advice"  # call 110/119/120/122 now
    referral = "referral"  # out of scope: who handles it and how to reach them
    answer = "answer"
    holding = "holding"  # the substantive answer comes later


class ReplyStatus(enum.StrEnum):
    queued = "queued"  # the delivery feature adds its states


class Reply(Timestamped, Base):
    """Text going back to the citizen; queued here, sent by the delivery feature."""

    __tablename__ = "reply"
    __table_args__ = (
        Index("ix_reply_queued", "priority", "id", postgresql_where="status = 'queued'"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    purpose: Mapped[ReplyPurpose] = mapped_column(Enum(ReplyPurpose, native_enum=False, length=16))
    priority: Mapped[int] = mapped_column(Integer)  # 0 goes first
    author: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"))
    status: Mapped[ReplyStatus] = mapped_column(
        Enum(ReplyStatus, native_enum=False, length=16), default=ReplyStatus.queued
    )
