import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Enum, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamped


class ReferralChannel(enum.StrEnum):
    phone = "phone"
    website = "website"
    address = "address"
    account = "account"  # another government account


class ReferralEntry(Timestamped, Base):
    """A competent body outside the service: what it handles, how to reach it, on what basis.

    Only a verified entry may appear in a citizen-facing text: a wrong number sends a citizen
    nowhere, so an entry someone typed in waits until someone checks it.
    """

    __tablename__ = "referral_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    handles: Mapped[str] = mapped_column(Text)
    channel: Mapped[ReferralChannel] = mapped_column(
        Enum(ReferralChannel, native_enum=False, length=16)
    )
    contact: Mapped[str] = mapped_column(String(300))
    basis: Mapped[str] = mapped_column(Text)  # the legal or administrative basis
    template: Mapped[str] = mapped_column(Text)  # {name} {contact} {handles} {basis} {reference}
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verification_note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Referral(Base):
    """An inquiry ended out of scope: the entry it was referred to, the basis, the text sent."""

    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), unique=True
    )
    entry_id: Mapped[int] = mapped_column(ForeignKey("referral_entry.id", ondelete="RESTRICT"))
    basis: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)  # the citizen-facing text
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
