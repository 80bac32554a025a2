from datetime import datetime

from pydantic import Field

from app.accounts.models import Platform
from app.inquiries.models import Channel, EventAction, InquiryKind, InquiryStatus
from app.schemas import Schema


class MessageRead(Schema):
    seq: int
    msg_type: str
    content: str
    sent_at: datetime


class InquiryRead(Schema):
    """An inquiry as its department sees it. The citizen's platform id is never included."""

    reference: str = Field(examples=["WX20261124-000123"])
    account_code: str
    platform: Platform
    channel: Channel
    kind: InquiryKind
    status: InquiryStatus
    received_at: datetime
    reply_due_at: datetime | None
    messages: list[MessageRead]


class EventRead(Schema):
    at: datetime
    actor: str
    action: EventAction
    from_status: InquiryStatus | None
    to_status: InquiryStatus | None
    reason: str


class StatusChange(Schema):
    reason: str = Field(
        min_length=2,
        max_length=2000,
        description="Why; kept in the audit trail.",
        examples=["重复发送的测试消息"],
    )
