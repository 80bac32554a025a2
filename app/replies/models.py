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


class ReplyPurpose(enum.StrEnum):
    urgent_advice = "urgent_advice"  # call 110/119/120/122 now
    referral = "referral"  # out of scope: who handles it and how to reach them
    answer = "answer"  # the substantive answer: the inquiry is `replied`
    holding = "holding"  # the substantive answer comes later
    interim = "interim"  # a person's progress message: meets the first-response due
    rating_prompt = "rating_prompt"  # after the answer: rate it with two digits (and a reminder)


class ReplyStatus(enum.StrEnum):
    awaiting_approval = "awaiting_approval"  # a public reply: a second person reviews it
    rejected = "rejected"  # the reviewer refused it (with a note); never sent
    withdrawn = "withdrawn"  # overtaken before review: a new holder, an answer, a merge
    queued = "queued"  # accepted, goes out (the delivery feature adds its states)
    given = "given"  # given by phone, letter or in person: recorded, nothing to send


class GivenVia(enum.StrEnum):
    platform = "platform"  # sent to the account's platform (WeChat, Weibo)
    phone = "phone"
    letter = "letter"
    in_person = "in_person"


class Reply(Timestamped, Base):
    """Text going back to the citizen; queued here, sent by the delivery feature. An answer given
    by another channel is recorded here too (`given`), with who gave it and when."""

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
        Enum(ReplyStatus, native_enum=False, length=24), default=ReplyStatus.queued
    )
    given_via: Mapped[GivenVia] = mapped_column(
        Enum(GivenVia, native_enum=False, length=16), server_default=GivenVia.platform.value
    )
    # For an answer given elsewhere: when, and by whom (a name; the recorder is `author`).
    given_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    given_by: Mapped[str | None] = mapped_column(String(200))
    # A public reply's review: by a second person of the department with the reviewer role.
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewer_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="RESTRICT")
    )
    review_note: Mapped[str] = mapped_column(Text, server_default="")


class ReplyTemplate(Timestamped, Base):
    """A department's reply template, kept by its reviewers. Variables {reference}, {due_date}
    and {department} are filled in for the inquiry; placeholders such as 【请填写处理结果】 must
    be filled by the responder: a reply that still holds one is refused."""

    __tablename__ = "reply_template"
    __table_args__ = (UniqueConstraint("department_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
