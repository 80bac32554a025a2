import enum
from datetime import date, datetime

from sqlalchemy import (
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class YearStatus(enum.StrEnum):
    official = "official"  # the State Council's notice for the year is entered
    provisional = "provisional"  # no notice yet: weekends + statutory days, no 调休


class DayKind(enum.StrEnum):
    day_off = "day_off"  # not a working day, though it may fall Monday to Friday
    workday = "workday"  # 调休: a working Saturday or Sunday


class CalendarYear(Base):
    """Where a year's working days come from, and how sure we are of them."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[YearStatus] = mapped_column(Enum(YearStatus, native_enum=False, length=16))
    source: Mapped[str] = mapped_column(Text)  # the notice (国办发明电…), or how it was derived
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumps on every change
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class CalendarDay(Base):
    """A day that is not what its weekday says: a holiday off, or a weekend working day."""

    __tablename__ = "calendar_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_year.year", ondelete="CASCADE"))
    kind: Mapped[DayKind] = mapped_column(Enum(DayKind, native_enum=False, length=16))
    name: Mapped[str] = mapped_column(String(100), default="")


class Unit(enum.StrEnum):
    working_days = "working_days"
    calendar_days = "calendar_days"  # a last day on a rest day moves to the next working day
    hours = "hours"  # wall-clock, around the clock


class DeadlineRule(Base):
    """How long a reply may take, per region, purpose and channel, and the document it follows.

    `purpose` is an inquiry kind (consultation, help, complaint, report, suggestion, other) or
    one of acknowledge, referral, urgent. The most specific region prefix wins; a rule without a
    prefix holds everywhere.
    """

    __tablename__ = "deadline_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    region_prefix: Mapped[str | None] = mapped_column(String(6))
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    unit: Mapped[Unit] = mapped_column(Enum(Unit, native_enum=False, length=16))
    length: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    is_default: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)


class PauseReason(enum.StrEnum):
    """The only reasons the clock stops (政府信息公开条例 art. 30/33, by analogy)."""

    awaiting_citizen = "awaiting_citizen"  # 补正: waiting for the citizen's material
    consulting_agency = "consulting_agency"  # formal consultation of another agency
    citizen_unreachable = "citizen_unreachable"


class PauseStatus(enum.StrEnum):
    requested = "requested"  # awaits the supervising office (consulting_agency, unreachable)
    refused = "refused"
    running = "running"  # the clock is stopped
    ended = "ended"


# These need the supervising office's approval, as an extension does; the clock stops from it.
NEEDS_APPROVAL = frozenset({PauseReason.consulting_agency, PauseReason.citizen_unreachable})


class DeadlinePause(Base):
    """A stopped clock. It credits the working days wholly inside it (after the day it started,
    before the day it ended); see deadlines/clock.py."""

    __tablename__ = "deadline_pause"
    __table_args__ = (
        # One pause asked for or running at a time.
        Index(
            "uq_deadline_pause_open",
            "inquiry_id",
            unique=True,
            postgresql_where=text("status IN ('requested', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    reason: Mapped[PauseReason] = mapped_column(Enum(PauseReason, native_enum=False, length=24))
    status: Mapped[PauseStatus] = mapped_column(Enum(PauseStatus, native_enum=False, length=16))
    note: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(200))
    # The office that decides a pause needing approval (the holder's nearest supervising office).
    office_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    # The clock is stopped from started_at (the request, or the approval) to ended_at.
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_by: Mapped[str | None] = mapped_column(String(200))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str | None] = mapped_column(String(200))
    working_days_added: Mapped[int | None] = mapped_column(Integer)


class ExtensionStatus(enum.StrEnum):
    requested = "requested"
    approved = "approved"
    refused = "refused"


class DeadlineExtension(Base):
    """More time, asked before the due time, decided by the supervising office; at most one."""

    __tablename__ = "deadline_extension"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), unique=True
    )
    office_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    working_days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[ExtensionStatus] = mapped_column(
        Enum(ExtensionStatus, native_enum=False, length=16)
    )
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decision_note: Mapped[str] = mapped_column(Text, default="")


class AlertKind(enum.StrEnum):
    warning = "warning"  # a share of the working time has passed
    escalation = "escalation"  # the deadline passed: one level up per further period


class Clock(enum.StrEnum):
    """The two due times every inquiry has."""

    first_response = "first_response"  # a person's first response (acknowledge, or urgent)
    reply = "reply"  # the substantive answer, by the kind's rule


class DeadlineAlert(Base):
    """A warning or escalation that fired; unique, so repeated or concurrent sweeps fire once."""

    __tablename__ = "deadline_alert"
    __table_args__ = (
        UniqueConstraint("inquiry_id", "clock", "kind", "level"),
        # What was escalated to a department: a scope of its list (bench/poll.py).
        Index(
            "ix_deadline_alert_escalated",
            "department_id",
            "inquiry_id",
            postgresql_where=text("kind = 'escalation'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id", ondelete="RESTRICT"))
    clock: Mapped[Clock] = mapped_column(
        Enum(Clock, native_enum=False, length=16), server_default=Clock.reply.value
    )
    kind: Mapped[AlertKind] = mapped_column(Enum(AlertKind, native_enum=False, length=16))
    level: Mapped[int] = mapped_column(Integer)  # warning: percent; escalation: 1, 2, …
    # Escalations: the department that may now read it (parent, then the offices above).
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RecountStatus(enum.StrEnum):
    running = "running"
    done = "done"


class CalendarRecount(Base):
    """A year was entered: its open inquiries are counted again by a batched job, whose progress
    the admin reads. Without a year: every open inquiry (migration 0015 queued one such run)."""

    __tablename__ = "calendar_recount"

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[RecountStatus] = mapped_column(Enum(RecountStatus, native_enum=False, length=16))
    total: Mapped[int] = mapped_column(Integer)  # open inquiries it found to count again
    done: Mapped[int] = mapped_column(Integer, default=0)
    # Keyset position: inquiries with a larger id are still to do.
    after_id: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
