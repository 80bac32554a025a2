from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Timestamped
from app.inquiries.models import Channel, InquiryKind

if TYPE_CHECKING:
    from app.accounts.models import Account
    from app.departments.models import Department
    from app.referrals.models import ReferralEntry


class KindRule(Timestamped, Base):
    """Classifies an inquiry's kind (咨询, 投诉, …) from its text, before routing."""

    __tablename__ = "kind_rule"
    __table_args__ = (
        CheckConstraint(
            "cardinality(keywords) > 0 OR pattern IS NOT NULL", name="matches_something"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[InquiryKind] = mapped_column(Enum(InquiryKind, native_enum=False, length=16))
    priority: Mapped[int] = mapped_column(Integer)  # lower is tried first
    keywords: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    pattern: Mapped[str | None] = mapped_column(Text)  # RE2 syntax
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingRule(Timestamped, Base):
    """Sends matching inquiries to the department whose duties cover them, and says why.

    Every condition given must hold (account, channel, kind, region prefix, keywords — any one of
    them — or the pattern); a condition left empty holds for everything.
    """

    __tablename__ = "routing_rule"
    __table_args__ = (
        CheckConstraint(
            "(department_id IS NULL) <> (referral_entry_id IS NULL)", name="one_target"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    priority: Mapped[int] = mapped_column(Integer)  # lower is tried first
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    channel: Mapped[Channel | None] = mapped_column(Enum(Channel, native_enum=False, length=16))
    kind: Mapped[InquiryKind | None] = mapped_column(
        Enum(InquiryKind, native_enum=False, length=16)
    )
    region_prefix: Mapped[str | None] = mapped_column(String(6))
    keywords: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    pattern: Mapped[str | None] = mapped_column(Text)  # RE2 syntax
    # The target: a department (in scope), or a referral directory entry (out of scope).
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    referral_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_entry.id", ondelete="RESTRICT")
    )
    explanation: Mapped[str] = mapped_column(Text)  # e.g. 社保缴费问题属于市人社局职责
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    account: Mapped["Account | None"] = relationship(lazy="raise")
    department: Mapped["Department | None"] = relationship(lazy="raise")
    referral_entry: Mapped["ReferralEntry | None"] = relationship(lazy="raise")

    @property
    def account_code(self) -> str | None:
        return self.account.code if self.account is not None else None

    @property
    def department_code(self) -> str | None:
        return self.department.code if self.department is not None else None

    @property
    def referral_entry_code(self) -> str | None:
        return self.referral_entry.code if self.referral_entry is not None else None
