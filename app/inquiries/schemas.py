from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, StrictBool

from app.accounts.models import Platform
from app.deadlines.models import PauseReason
from app.inquiries.models import (
    AssignmentDecision,
    Channel,
    EventAction,
    InquiryKind,
    InquiryStatus,
    ReturnReason,
)
from app.ratings.schemas import CallbackView, RatingView
from app.schemas import Schema


class MessageRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 2,
                    "msg_type": "voice",
                    "content": "路灯坏了",
                    "sent_at": "2026-11-24T02:01:00Z",
                }
            ]
        }
    )

    seq: int
    msg_type: str
    content: str
    sent_at: datetime


class MediaView(Schema):
    """A picture, voice or video of one of the messages (`seq`), fetched from the platform."""

    id: int
    seq: int
    kind: str
    status: str = Field(
        description="pending (being fetched), stored (`href` serves it) or failed (never a "
        "broken link: `error` says why, e.g. expired after the platform's 3 days)."
    )
    content_type: str | None
    size: int | None
    error_code: str | None
    error: str
    href: str | None = Field(description="Where the file is served, once stored.")


class AssignmentRead(Schema):
    """Who holds the inquiry now, since when, by whose decision and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "department_code": "hefei-urban",
                    "since": "2026-11-24T03:00:00Z",
                    "decision": "transferred",
                    "decided_by": "person:12 王芳 (hefei-hrss)",
                    "reason": "噪音扰民属于城管局职责",
                }
            ]
        }
    )

    department_code: str = Field(examples=["hefei-hrss"])
    since: datetime
    decision: AssignmentDecision
    decided_by: str = Field(examples=["system:router"])
    reason: str = Field(examples=["社保缴费问题属于市人社局职责"])


class InquiryRead(Schema):
    """An inquiry as its department sees it. The citizen's platform id is never included."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reference": "WX20261124-000123",
                    "account_code": "hefei-wechat",
                    "platform": "wechat",
                    "channel": "private_message",
                    "kind": "consultation",
                    "status": "assigned",
                    "urgent": False,
                    "received_at": "2026-11-24T02:00:00Z",
                    "first_response_due_at": "2026-11-25T15:59:59Z",
                    "first_responded_at": None,
                    "reply_due_at": "2026-11-26T15:59:59Z",
                    "original_due_at": None,
                    "due_provisional": False,
                    "routed_at": "2026-11-24T02:00:01Z",
                    "routing_explanation": "社保缴费问题属于市人社局职责",
                    "assignment": {
                        "department_code": "hefei-hrss",
                        "since": "2026-11-24T02:00:01Z",
                        "decision": "routed",
                        "decided_by": "system:router",
                        "reason": "社保缴费问题属于市人社局职责",
                    },
                    "awaiting_arbitration": False,
                    "messages": [
                        {
                            "seq": 1,
                            "msg_type": "text",
                            "content": "社保断缴了三个月，现在怎么补缴？",
                            "sent_at": "2026-11-24T02:00:00Z",
                        }
                    ],
                }
            ]
        }
    )

    reference: str = Field(examples=["WX20261124-000123"])
    account_code: str
    platform: Platform
    channel: Channel
    kind: InquiryKind
    status: InquiryStatus
    urgent: StrictBool = Field(description="Life-and-safety content was found.")
    received_at: datetime
    first_response_due_at: datetime | None = Field(
        description="A person's first response is due: the `acknowledge` rule from receipt, or "
        "the `urgent` rule (hours, around the clock) from when life-and-safety words arrived."
    )
    first_responded_at: datetime | None = Field(
        description="When a person first responded (never an automatic text)."
    )
    reply_due_at: datetime | None = Field(
        description="The substantive answer's due time, by the kind's rule: end of the period, "
        "UTC (23:59:59 in Beijing)."
    )
    original_due_at: datetime | None = Field(description="Before an approved extension.")
    due_provisional: StrictBool = Field(
        description="The deadline reaches a year whose holiday notice is not entered yet."
    )
    routed_at: datetime | None
    routing_explanation: str | None = Field(
        description="Why routing sent it where it did (routing's decision, kept after hand-overs)."
    )
    assignment: AssignmentRead | None = Field(
        description="The current holder: who, since when, by whose decision and why."
    )
    awaiting_arbitration: StrictBool = Field(
        description="Returned twice: the supervising office decides who handles it."
    )
    messages: list[MessageRead]


class EventRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-11-24T03:00:00Z",
                    "actor": "person:12 王芳 (hefei-hrss)",
                    "action": "status_changed",
                    "from_status": "assigned",
                    "to_status": "invalid",
                    "reason": "广告骚扰",
                }
            ]
        }
    )

    at: datetime
    actor: str
    action: EventAction
    from_status: InquiryStatus | None
    to_status: InquiryStatus | None
    reason: str


class KindCorrection(Schema):
    kind: InquiryKind
    reason: str = Field(min_length=2, max_length=2000, examples=["市民反映的是投诉，不是咨询"])


class ReturnRequest(Schema):
    reason: ReturnReason = Field(description="Why it should not have come here.")
    note: str = Field(min_length=2, max_length=2000, examples=["噪音扰民属于城管局职责"])


class TransferRequest(Schema):
    department_code: str
    note: str = Field(min_length=2, max_length=2000, examples=["转交市城管局办理"])


class ArbitrationRequest(Schema):
    """The office's binding decision: exactly one of department_code or entry_code."""

    department_code: str | None = None
    entry_code: str | None = None
    note: str = Field(min_length=2, max_length=2000, examples=["经协调，由市城管局办理"])


class PauseRequest(Schema):
    reason: PauseReason = Field(description="Only these stop the clock.")
    note: str = Field(min_length=2, max_length=2000, examples=["已请市民补充身份证明材料"])


class ResumeRequest(Schema):
    note: str = Field(default="", max_length=2000, examples=["市民已补充材料"])


class ExtensionRequest(Schema):
    working_days: int = Field(ge=1, le=60, description="At most the original period.")
    reason: str = Field(min_length=4, max_length=2000, examples=["需现场核查，涉及多个部门"])


class FirstResponse(Schema):
    """A person's first response given outside the platform (a call, a visit, a letter)."""

    channel: Literal["phone", "in_person", "letter"]
    at: AwareDatetime = Field(description="When it was given, with its offset; not in the future.")
    note: str = Field(min_length=2, max_length=2000, examples=["已电话联系市民，告知办理进度"])


class PauseDecision(Schema):
    approve: StrictBool
    note: str = Field(
        min_length=2, max_length=2000, examples=["同意暂停：已正式征求市场监管局意见"]
    )


class ExtensionDecision(Schema):
    approve: StrictBool
    note: str = Field(min_length=2, max_length=2000, examples=["同意延期5个工作日"])


class StatusChange(Schema):
    reason: str = Field(
        min_length=2,
        max_length=2000,
        description="Why; kept in the audit trail.",
        examples=["重复发送的测试消息"],
    )


class InquiryItem(Schema):
    """One row of a department's list: no message text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reference": "WX20261124-000123",
                    "kind": "consultation",
                    "status": "assigned",
                    "channel": "private_message",
                    "holder": "hefei-hrss",
                    "urgent": False,
                    "received_at": "2026-11-24T02:00:00Z",
                    "first_response_due_at": "2026-11-25T15:59:59Z",
                    "reply_due_at": "2026-11-26T15:59:59Z",
                    "due_provisional": False,
                    "paused": False,
                    "awaiting_arbitration": False,
                    "version": 42,
                }
            ]
        }
    )

    reference: str
    kind: InquiryKind
    status: InquiryStatus
    channel: Channel
    holder: str | None = Field(description="The department holding it.")
    urgent: StrictBool
    received_at: datetime
    first_response_due_at: datetime | None
    reply_due_at: datetime | None
    due_provisional: StrictBool
    paused: StrictBool = Field(description="The reply clock stands still.")
    awaiting_arbitration: StrictBool
    version: int = Field(description="Its latest change: grows with every change, as in the feed.")


class InquiryList(Schema):
    """A keyset page (the exception to the `total` shape: no count on the polling path)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "next": "MjAyNi0xMS0yNlQxNTo1OTo1OXwxMjM"}]}
    )

    items: list[InquiryItem]
    next: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class ChangeRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cursor": "Nzg5fDQ1Ng",
                    "reference": "WX20261124-000123",
                    "version": 456,
                    "kind": "message_appended",
                    "at": "2026-11-24T02:05:00Z",
                }
            ]
        }
    )

    cursor: str
    reference: str
    version: int
    kind: str = Field(
        description="The event (`created`, `message_appended`, `routed`, `transferred`, "
        "`deadline_warning`, `escalated`, …), `left_view` when it left your view, "
        "`escalated_to_you` when an escalation gave you read access."
    )
    at: datetime


class ChangeFeed(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next": "Nzg5fDQ1Ng"}]})

    items: list[ChangeRead]
    next: str | None = Field(description="Pass as `after` next time (the same when nothing new).")


class PauseView(Schema):
    reason: PauseReason
    status: str = Field(examples=["ended"], description="requested, refused, running or ended.")
    requested_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    working_days_added: int | None = Field(description="What it credited, once it ended.")


class ExtensionView(Schema):
    working_days: int
    status: str = Field(examples=["approved"])
    reason: str
    requested_at: datetime
    decided_at: datetime | None


class ClockView(Schema):
    """Both due times with how they were counted (deadlines/clock.py)."""

    first_response_due_at: datetime | None
    first_response_from: datetime | None = Field(description="Receipt, or the urgent words.")
    first_response_rule_id: int | None
    first_response_unit: str | None
    first_response_length: int | None
    first_responded_at: datetime | None
    reply_due_at: datetime | None
    original_due_at: datetime | None = Field(description="Before an approved extension.")
    deadline_rule_id: int | None
    deadline_unit: str | None
    deadline_length: int | None
    calendar_version: str | None
    due_provisional: StrictBool
    pauses: list[PauseView]
    extension: ExtensionView | None


class ReferralView(Schema):
    entry_code: str
    basis: str
    explanation: str = Field(description="The text the citizen is sent.")
    actor: str
    created_at: datetime


class WindowView(Schema):
    """The platform's window to this citizen: replies go out as messages only while it is open."""

    open: bool
    closes_at: datetime | None = Field(description="48 h after the citizen's last message.")
    messages_left: int = Field(description="Of the window's 5 (holding replies count).")
    next_path: str = Field(
        description="How the next reply reaches the citizen: `message` (now, inside the "
        "window); else it waits for the citizen's next message and meanwhile `subscribe` (a "
        "subscription notification links to the answer page), `template` (a template message "
        "does) or `answer_page` (the page alone: its query code came with the acknowledgement "
        "or the holding reply)."
    )


class DeliveryView(Schema):
    id: int
    via: str = Field(
        description="`message` (the reply itself), `subscribe` or `template` (a notification "
        "that the answer is ready, with the answer page's link)."
    )
    status: str = Field(
        description="queued, sending, delivered, awaiting_window, failed or uncertain."
    )
    error_code: str | None = Field(description="The platform's errcode, or what went wrong.")
    error: str


class ReplyView(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "purpose": "answer",
                    "status": "queued",
                    "text": "您好，断缴3个月内可到市民中心3号窗口补缴，咨询电话0551-12333。",
                    "author": "person:12 王芳 (hefei-hrss)",
                    "created_at": "2026-11-25T02:00:00Z",
                    "given_via": "platform",
                }
            ]
        }
    )

    id: int
    purpose: str = Field(
        examples=["answer"], description="urgent_advice, referral, holding, interim or answer."
    )
    status: str = Field(
        examples=["queued"],
        description="awaiting_approval (a public reply: a second person reviews it), rejected, "
        "queued (goes out to the platform) or given (by phone, letter or in person).",
    )
    text: str
    author: str
    created_at: datetime
    given_via: str = Field(examples=["platform"], description="platform, phone, letter, in_person")
    given_at: datetime | None = None
    given_by: str | None = None
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    review_note: str = ""
    deliveries: list[DeliveryView] = Field(
        default_factory=list,
        description="One per recipient (a merged repeat's citizen too), with the platform's word.",
    )


class InquiryDetail(InquiryRead):
    """One inquiry with everything a clerk needs: the citizen as a pseudonym, never the platform
    id; the clock with its provenance; the referral and replies; where its trail is."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reference": "WX20261124-000123",
                    "citizen": "c-3f9a1b2c4d5e",
                    "clock": {"reply_due_at": "2026-11-26T15:59:59Z", "pauses": []},
                    "referral": None,
                    "replies": [],
                    "links": {"events": "/api/v1/inquiries/WX20261124-000123/events"},
                }
            ]
        }
    )

    citizen: str = Field(description="A stable pseudonym per account (a keyed hash).")
    version: int = Field(description="Its latest change: send it as If-Match with an action.")
    signed_by: str | None = Field(
        description="签收: the person of the holding department who took it on (none yet: null)."
    )
    signed_at: datetime | None
    merged_into: str | None = Field(description="并单: the inquiry whose answer this one gets.")
    previous_reference: str | None = Field(
        description="The citizen's inquiry before this one on the account."
    )
    possible_repeat: StrictBool = Field(
        description="Opened after the citizen's previous inquiry was closed: perhaps a repeat "
        "appeal (重复诉求); see previous_reference."
    )
    follow_up_at: datetime | None = Field(
        description="The citizen's latest message after the answer (`replied`): a follow-up."
    )
    media: list[MediaView] = Field(description="Pictures, voice and video the citizen sent.")
    ratings: list[RatingView] = Field(description="The citizen's ratings of the answer.")
    callbacks: list[CallbackView] = Field(description="Call-backs (回访) owed after bad ratings.")
    window: WindowView | None = Field(description="Private messages: the platform's window.")
    clock: ClockView
    referral: ReferralView | None
    replies: list[ReplyView]
    links: dict[str, str]


class ReadLogEntry(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "actor": "person:12 王芳 (hefei-hrss)",
                    "department_code": "hefei-hrss",
                    "at": "2026-11-24T03:00:00Z",
                }
            ]
        }
    )

    actor: str
    department_code: str
    at: datetime


class SignFor(Schema):
    """签收. A person's key signs for its person; a client system's key names the person."""

    person_id: int | None = Field(default=None, description="Only with a client system's key.")


class HandOver(Schema):
    person_id: int = Field(description="An active colleague of the same department.")
    note: str = Field(default="", max_length=2000, examples=["请王芳跟进，她负责社保业务"])


class NoteCreate(Schema):
    text: str = Field(min_length=1, max_length=5000, examples=["已联系社保中心核实缴费记录"])


class NoteRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "at": "2026-11-24T03:00:00Z",
                    "author": "person:12 王芳 (hefei-hrss)",
                    "text": "已联系社保中心核实缴费记录",
                }
            ]
        }
    )

    id: int
    at: datetime
    author: str
    text: str


class MergeRequest(Schema):
    into: str = Field(
        min_length=1, max_length=32, description="The surviving inquiry's reference (open, yours)."
    )
    reason: str = Field(min_length=2, max_length=2000, examples=["同一市民重复反映同一事项"])


class MergeCandidateRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reference": "WX20261124-000118",
                    "kind": "consultation",
                    "status": "assigned",
                    "received_at": "2026-11-24T01:40:00Z",
                    "same_citizen": True,
                    "similarity": 87.5,
                }
            ]
        }
    )

    reference: str
    kind: InquiryKind
    status: InquiryStatus
    received_at: datetime
    same_citizen: bool = Field(description="The same citizen on the same account, recently.")
    similarity: float = Field(description="Text similarity 0–100 (rapidfuzz WRatio).")
