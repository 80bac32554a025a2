import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamped


class Rating(Base):
    """A citizen's rating of an answer, on the two axes of 12345 practice: solved (已解决 /
    未解决) and satisfaction, 1 非常满意 … 5 非常不满意. Written by intake from the digits the
    citizen sends while a rating prompt of theirs is outstanding; a single digit is satisfaction
    alone (solved unknown)."""

    __tablename__ = "rating"
    __table_args__ = (CheckConstraint("satisfaction BETWEEN 1 AND 5", name="satisfaction_1_to_5"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    solved: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[int] = mapped_column(SmallInteger)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    inbox_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbox_event.id", ondelete="RESTRICT")
    )
    # When the department was told (and a call-back opened): once, however often the job runs.
    noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def bad(self) -> bool:
        """差评: 不满意 or 非常不满意 (4, 5), or 未解决."""
        return self.satisfaction >= 4 or self.solved is False


class CallbackStatus(enum.StrEnum):
    open = "open"
    done = "done"


class Callback(Timestamped, Base):
    """A call-back (回访) the department owes a citizen who rated an answer badly, with its own
    deadline (CALLBACK_WORKING_DAYS); its outcome is recorded, and the citizen may rate again."""

    __tablename__ = "callback"
    __table_args__ = (
        Index(
            "ix_callback_open_due",
            "department_id",
            "due_at",
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    rating_id: Mapped[int] = mapped_column(
        ForeignKey("rating.id", ondelete="RESTRICT"), unique=True
    )
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[CallbackStatus] = mapped_column(
        Enum(CallbackStatus, native_enum=False, length=8), default=CallbackStatus.open
    )
    reached: Mapped[bool | None] = mapped_column(Boolean)  # the citizen was reached
    outcome: Mapped[str] = mapped_column(Text, server_default="")
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its passing the due without an outcome was told (an event: feed and push), once.
    overdue_noticed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str | None] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"))
