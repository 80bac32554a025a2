import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import UserDefinedType

from app.accounts.models import Platform
from app.db import Base, Timestamped

if TYPE_CHECKING:
    from app.accounts.models import Account
    from app.departments.models import Department


class Channel(enum.StrEnum):
    private_message = "private_message"
    comment = "comment"


class InquiryKind(enum.StrEnum):
    consultation = "consultation"  # 咨询
    help = "help"  # 求助
    complaint = "complaint"  # 投诉/申诉
    report = "report"  # 举报
    suggestion = "suggestion"  # 建议
    other = "other"


class InquiryStatus(enum.StrEnum):
    new = "new"
    assigned = "assigned"
    # A person's answer was accepted: queued for the platform, or given by phone, letter or in
    # person. Its delivery is the reply's own state. An acknowledgement is not an answer.
    replied = "replied"
    closed = "closed"
    referred = "referred"  # ended with a referral: out of scope, told where it is handled
    invalid = "invalid"  # 无效件, always with a reason
    merged = "merged"  # 并单: a repeat of another inquiry (merged_into), answered with it


# The one place that says how an inquiry may move. README "Status" shows the same table.
TRANSITIONS: dict[InquiryStatus, frozenset[InquiryStatus]] = {
    InquiryStatus.new: frozenset(
        {
            InquiryStatus.assigned,
            InquiryStatus.referred,
            InquiryStatus.invalid,
            InquiryStatus.merged,
        }
    ),
    InquiryStatus.assigned: frozenset(
        {
            InquiryStatus.replied,
            InquiryStatus.referred,
            InquiryStatus.invalid,
            InquiryStatus.merged,
        }
    ),
    InquiryStatus.replied: frozenset({InquiryStatus.closed}),
    InquiryStatus.closed: frozenset(),
    InquiryStatus.referred: frozenset(),
    InquiryStatus.invalid: frozenset(),
    # Undone (unmerge) the same working day only, back to the status it had.
    InquiryStatus.merged: frozenset({InquiryStatus.new, InquiryStatus.assigned}),
}


# No way out, or only the same-day undo of a merge: the clock has stopped for good.
ENDED_STATUSES = frozenset(
    status
    for status, allowed in TRANSITIONS.items()
    if not allowed or status is InquiryStatus.merged
)


class EventAction(enum.StrEnum):
    created = "created"
    message_appended = "message_appended"
    conversation_closed = "conversation_closed"  # quiet past the window: next message opens anew
    status_changed = "status_changed"
    routed = "routed"
    flagged_urgent = "flagged_urgent"
    kind_changed = "kind_changed"
    routing_marked_wrong = "routing_marked_wrong"
    deadline_set = "deadline_set"
    deadline_recomputed = "deadline_recomputed"
    first_response_recorded = "first_response_recorded"  # a person answered by phone, in person…
    pause_requested = "pause_requested"  # awaits the supervising office
    pause_decided = "pause_decided"
    paused = "paused"
    resumed = "resumed"
    deadline_warning = "deadline_warning"
    escalated = "escalated"
    extension_requested = "extension_requested"
    extension_decided = "extension_decided"
    returned = "returned"  # 退单: a department says it should not have got it
    transferred = "transferred"
    handed_back = "handed_back"  # its department was deactivated
    sent_to_arbitration = "sent_to_arbitration"
    arbitrated = "arbitrated"
    signed_for = "signed_for"  # 签收: a person took it on
    handed_over = "handed_over"  # to a colleague of the same department
    note_added = "note_added"  # internal, never sent
    reply_submitted = "reply_submitted"  # a public reply awaits a reviewer
    reply_reviewed = "reply_reviewed"
    reply_queued = "reply_queued"  # accepted: goes out to the platform
    answer_recorded = "answer_recorded"  # given by phone, letter or in person
    merged = "merged"
    unmerged = "unmerged"
    reply_delivered = "reply_delivered"  # the platform accepted it
    delivery_waiting = "delivery_waiting"  # the window is closed: it waits
    delivery_failed = "delivery_failed"  # refused for good, the platform's word kept
    delivery_uncertain = "delivery_uncertain"  # a worker died mid-call: confirm or resend
    delivery_resent = "delivery_resent"  # the department sends it again
    window_closing = "window_closing"  # a holding reply went out; the department is warned
    followed_up = "followed_up"  # the citizen wrote again after the answer (`replied`)
    citizen_unfollowed = "citizen_unfollowed"  # nothing more can be sent on that account
    rated = "rated"  # the citizen rated the answer
    callback_opened = "callback_opened"  # a bad rating: the department calls back (回访)
    callback_overdue = "callback_overdue"  # its due passed with no outcome recorded
    callback_done = "callback_done"


class ReturnReason(enum.StrEnum):
    not_our_duty = "not_our_duty"  # 非本单位职责
    wrong_region = "wrong_region"  # 非本辖区
    duplicate = "duplicate"
    other = "other"


class Inquiry(Timestamped, Base):
    """What one citizen asks on one account, to be answered."""

    __tablename__ = "inquiry"
    __table_args__ = (
        # A department's open inquiries by due date: the polling clients' main query.
        Index(
            "ix_inquiry_department_open_due",
            "department_id",
            "reply_due_at",
            postgresql_where=text("status IN ('new', 'assigned')"),
        ),
        # The list's tag holds the next first-response breach (bench/poll.py).
        Index(
            "ix_inquiry_department_first_response",
            "department_id",
            "first_response_due_at",
            postgresql_where=text("status IN ('new', 'assigned') AND first_responded_at IS NULL"),
        ),
        # The list's keyset pages over a department's work still to do (bench/poll.py).
        Index(
            "ix_inquiry_department_work",
            "department_id",
            "reply_due_at",
            "id",
            postgresql_where=text("status IN ('new', 'assigned', 'replied')"),
        ),
        Index("ix_inquiry_account_citizen", "account_id", "citizen_id"),
        # The repeats merged into a survivor: each gets its answer.
        Index(
            "ix_inquiry_merged_into_id",
            "merged_into_id",
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
        # At most one inquiry per citizen and account takes new messages, also under races.
        Index(
            "uq_inquiry_open_conversation",
            "account_id",
            "citizen_id",
            unique=True,
            postgresql_where=text("accepts_messages"),
        ),
        # The sweep that re-queues routing left undone.
        Index("ix_inquiry_unrouted", "created_at", postgresql_where=text("routed_at IS NULL")),
        # The deadline sweep pages through open inquiries only (bench/sweep_plan.py).
        Index(
            "ix_inquiry_open_clock",
            "id",
            postgresql_where=text(
                "status IN ('new', 'assigned') AND department_id IS NOT NULL"
                " AND reply_due_at IS NOT NULL"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Public, e.g. WX20261124-000123; the number widens past 999,999.
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    platform: Mapped[Platform] = mapped_column(Enum(Platform, native_enum=False, length=16))
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=16))
    # The sender's platform id (WeChat OpenID, Weibo uid): opaque, never shown to departments.
    citizen_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[InquiryKind] = mapped_column(
        Enum(InquiryKind, native_enum=False, length=16), default=InquiryKind.other
    )
    status: Mapped[InquiryStatus] = mapped_column(
        Enum(InquiryStatus, native_enum=False, length=16), default=InquiryStatus.new
    )
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    reply_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # How reply_due_at was derived (provenance): the rule, its unit and length, the calendar
    # version it was counted with, and whether it reaches a year without an official notice.
    deadline_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("deadline_rule.id", ondelete="RESTRICT")
    )
    deadline_unit: Mapped[str | None] = mapped_column(String(16))
    deadline_length: Mapped[int | None] = mapped_column(Integer)
    calendar_version: Mapped[str | None] = mapped_column(String(16))
    due_provisional: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # With an approved extension: the due time before it; reply_due_at is then the extended one.
    original_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A person's first response is due by the `acknowledge` rule, or by `urgent` (hours, around
    # the clock, from urgent_at) once life-and-safety words arrived; met by a person, never by
    # automatic text. All of these come from deadlines/clock.py.
    first_response_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("deadline_rule.id", ondelete="RESTRICT")
    )
    first_response_unit: Mapped[str | None] = mapped_column(String(16))
    # Counted from: receipt (acknowledge), or when urgent words arrived (urgent).
    first_response_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_length: Mapped[int | None] = mapped_column(Integer)
    first_responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Conversation threading: set while the citizen's next private message joins this inquiry.
    accepts_messages: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    last_message_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message_count: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    previous_inquiry_id: Mapped[int | None] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT")
    )
    urgent: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    urgent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The answer page's query code (查询码): 10 random digits made at intake (the column default
    # is govinbox_query_code(), from PostgreSQL's strong random source), carried by the first
    # outbound text. With the reference it opens /answer; never shown by the department API.
    query_code: Mapped[str] = mapped_column(
        String(10), server_default=text("govinbox_query_code()")
    )
    # Issue 16: the citizen's latest message after the answer (a follow-up the department should
    # see); an inquiry opened after the citizen's previous one was closed (perhaps a repeat
    # appeal, 重复诉求); the rating prompt and its one reminder.
    follow_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    possible_repeat: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    rating_prompted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rating_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When routing decided, by which rule (None with routed_at set: the fallback to the account's
    # owning department), and why; routed_at None means the routing job has yet to run.
    routed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    routing_rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("routing_rule.id", ondelete="RESTRICT")
    )
    routing_explanation: Mapped[str | None] = mapped_column(Text)
    # Sent to a supervising office after repeated returns (退单); its decision binds.
    arbitration_office_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    arbitrated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A department said the routing was wrong: what routing accuracy per rule counts.
    routing_marked_wrong_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # 并单: merged into the survivor, when, and the status it had (restored by an unmerge).
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT")
    )
    merged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    merged_from_status: Mapped[InquiryStatus | None] = mapped_column(
        Enum(InquiryStatus, native_enum=False, length=16)
    )

    account: Mapped["Account"] = relationship(lazy="raise")
    messages: Mapped[list["InquiryMessage"]] = relationship(
        lazy="raise", order_by="InquiryMessage.seq", back_populates="inquiry"
    )
    # The hand-overs, oldest first; the last one without `until` is the current holder's.
    assignments: Mapped[list["InquiryAssignment"]] = relationship(
        lazy="raise", order_by="InquiryAssignment.id"
    )

    @property
    def assignment(self) -> "InquiryAssignment | None":
        """Who holds it now, since when, by whose decision and why."""
        return next((a for a in reversed(self.assignments) if a.until is None), None)

    @property
    def account_code(self) -> str:
        return self.account.code

    @property
    def awaiting_arbitration(self) -> bool:
        return self.arbitration_office_id is not None and self.arbitrated_at is None


class InquiryMessage(Base):
    """One message of the citizen's conversation, in the order it arrived."""

    __tablename__ = "inquiry_message"
    __table_args__ = (
        UniqueConstraint("inquiry_id", "seq"),
        # The sweep that re-runs urgent checks left undone.
        Index(
            "ix_inquiry_message_urgent_unchecked",
            "id",
            postgresql_where=text("urgent_checked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    platform_msg_id: Mapped[str | None] = mapped_column(String(64))
    inbox_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbox_event.id", ondelete="RESTRICT")
    )
    msg_type: Mapped[str] = mapped_column(String(32), default="text")
    content: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when the life-and-safety check (routing or check_urgent) has read this message.
    urgent_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    inquiry: Mapped[Inquiry] = relationship(lazy="raise", back_populates="messages")


class AssignmentDecision(enum.StrEnum):
    """How an inquiry came to a department."""

    routed = "routed"  # routing's decision (a rule, or the owner's fallback)
    rerouted = "rerouted"  # a later fragment changed routing's decision before anyone acted
    transferred = "transferred"  # the holder handed it over
    returned = "returned"  # 退单: back to the dispatcher
    sent_to_arbitration = "sent_to_arbitration"  # two disclaimers: the office decides
    arbitrated = "arbitrated"  # the office's binding decision
    handed_back = "handed_back"  # its department was deactivated: the dispatcher takes it
    backfilled = "backfilled"  # the holder when the history began (migration 0017)


ROUTING_DECISIONS = frozenset({AssignmentDecision.routed, AssignmentDecision.rerouted})


class InquiryAssignment(Base):
    """Who holds an inquiry, since when, by whose decision and why: one row per hand-over, the
    current one open (`until` NULL). The inquiry's department_id mirrors the current row."""

    __tablename__ = "inquiry_assignment"
    __table_args__ = (
        Index(
            "uq_inquiry_assignment_current",
            "inquiry_id",
            unique=True,
            postgresql_where=text("until IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[AssignmentDecision] = mapped_column(
        Enum(AssignmentDecision, native_enum=False, length=24)
    )
    # The holder said "not ours" (a return; a transfer by anyone but the dispatcher), decided
    # when it happened: after two, the supervising office decides.
    disclaims: Mapped[bool] = mapped_column(Boolean)
    # The department that left it (for a disclaimer: who disclaimed it).
    from_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    decided_by: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"))
    reason: Mapped[str] = mapped_column(Text)

    # 签收: the person of the holding department who took it on (a hand-over to a colleague
    # changes the person); a new holder starts unsigned. Signing never moves a deadline.
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_by_person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="RESTRICT")
    )

    department: Mapped["Department"] = relationship(foreign_keys=[department_id], lazy="joined")

    @property
    def department_code(self) -> str:
        return self.department.code


class InquiryEvent(Base):
    """Append-only audit trail: who changed what on an inquiry, when and why."""

    __tablename__ = "inquiry_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"))
    action: Mapped[EventAction] = mapped_column(Enum(EventAction, native_enum=False, length=32))
    from_status: Mapped[InquiryStatus | None] = mapped_column(
        Enum(InquiryStatus, native_enum=False, length=16)
    )
    to_status: Mapped[InquiryStatus | None] = mapped_column(
        Enum(InquiryStatus, native_enum=False, length=16)
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


# Reflection (alembic's model check) knows the type by name.
postgresql_base.ischema_names["xid8"] = Xid8


class InquiryChange(Base):
    """One change, as a department's feed sees it; written by triggers (migration 0018) on every
    inquiry event, hand-over and escalation, never by application code."""

    __tablename__ = "inquiry_change"
    __table_args__ = (
        Index("ix_inquiry_change_department_xact", "department_id", "xact", "id"),
        Index("ix_inquiry_change_xact", "xact", "id"),
        Index("ix_inquiry_change_inquiry", "inquiry_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    xact: Mapped[int] = mapped_column(Xid8(), server_default=text("pg_current_xact_id()"))
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id", ondelete="RESTRICT"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT")
    )
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ContentRead(Base):
    """Who read an inquiry's content: one row per key and inquiry at most once an hour. A read
    is not a change: no event, no feed entry."""

    __tablename__ = "inquiry_read"
    __table_args__ = (Index("ix_inquiry_read_inquiry_key_at", "inquiry_id", "api_key_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiry.id", ondelete="RESTRICT"))
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id", ondelete="RESTRICT"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class InquiryNote(Base):
    """An internal note for colleagues: never sent, never shown to the citizen."""

    __tablename__ = "inquiry_note"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    author: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"))
    text: Mapped[str] = mapped_column(Text)
