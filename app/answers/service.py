"""The answer page (答复查询): the rung of the ladder that always works. A citizen opens it with
the inquiry's reference and its query code (查询码), which the first outbound text carried, and
sees the status, the due date and the answer. An unknown reference and a wrong code look the
same, and wrong codes are limited per reference (known or not)."""

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.calendar import CHINA
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryStatus
from app.replies.models import GivenVia, Reply, ReplyPurpose, ReplyStatus
from app.settings import settings

REFERENCE = re.compile(r"W[XB][0-9]{8}-[0-9]{6,12}")
_NO_CODE = "\x00" * 10  # compared against when the reference is unknown: the same work either way
# What the first outbound text (the acknowledgement, else the first reply sent as a message) and
# every holding reply add: the code and the page. {code} and {link} are filled in.
CODE_LINE = "\n查询码{code}，可凭编号和查询码查看办理进展：{link}"


def answer_link(reference: str, code: str) -> str:
    """The page's address for one inquiry, as the citizen's texts carry it."""
    query = urlencode({"ref": reference, "code": code})
    return f"{settings().public_base_url.rstrip('/')}/answer?{query}"


def code_line(reference: str, code: str) -> str:
    return CODE_LINE.format(code=code, link=answer_link(reference, code))


@dataclass(frozen=True)
class Shown:
    """One reply as the page shows it."""

    at: datetime
    text: str
    note: str  # how it was given, when not through the platform


@dataclass(frozen=True)
class Page:
    reference: str
    status: str  # in the citizen's words
    received_at: datetime
    department: str | None
    due: datetime | None  # while it is being handled
    merged: bool
    replies: list[Shown]


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


# Per key (the reference, the client): the window's start and the failures since; the rows are
# locked for the rest of the request (client first, then reference), so guesses take turns and
# the counts hold.
_ATTEMPT = text(
    """
    INSERT INTO answer_attempt AS a (key, window_start, failures)
    VALUES (:key, :now, 0)
    ON CONFLICT (key) DO UPDATE SET
        window_start = CASE WHEN a.window_start <= :expired THEN :now ELSE a.window_start END,
        failures = CASE WHEN a.window_start <= :expired THEN 0 ELSE a.failures END
    RETURNING a.window_start, a.failures
    """
)
_FAILED = text("UPDATE answer_attempt SET failures = failures + 1 WHERE key IN (:a, :b)")

_SHOWN: tuple[ReplyPurpose, ...] = (
    ReplyPurpose.urgent_advice,
    ReplyPurpose.referral,
    ReplyPurpose.interim,
    ReplyPurpose.answer,
)
_GIVEN = {
    GivenVia.phone: "已电话答复",
    GivenVia.letter: "已书面答复",
    GivenVia.in_person: "已当面答复",
}


async def look(
    session: AsyncSession, reference: str, code: str, *, client: str, now: datetime
) -> Page | None:
    """The page for a reference and its code, or None (unknown reference or wrong code, alike);
    TooManyAttempts once the reference had ANSWER_PAGE_ATTEMPTS wrong codes in the window, or
    the client ANSWER_PAGE_CLIENT_ATTEMPTS over all references."""
    config = settings()
    reference = reference.strip().upper()
    if not REFERENCE.fullmatch(reference):
        return None  # no such reference can exist: nothing to count
    window = timedelta(minutes=config.answer_page_window_minutes)
    keys = (f"client:{client}"[:64], f"ref:{reference}")
    for key, limit in zip(
        keys, (config.answer_page_client_attempts, config.answer_page_attempts), strict=True
    ):
        started, failures = (
            await session.execute(_ATTEMPT, {"key": key, "now": now, "expired": now - window})
        ).one()
        if failures >= limit:
            raise TooManyAttempts(max(1, int((started + window - now).total_seconds())))
    inquiry = await session.scalar(select(Inquiry).where(Inquiry.reference == reference))
    expected = inquiry.query_code if inquiry is not None else _NO_CODE
    if not hmac.compare_digest(code.strip().encode(), expected.encode()) or inquiry is None:
        await session.execute(_FAILED, {"a": keys[0], "b": keys[1]})
        return None
    return await _page(session, inquiry)


async def _page(session: AsyncSession, inquiry: Inquiry) -> Page:
    shown, purposes = inquiry, _SHOWN
    statuses: tuple[ReplyStatus, ...] = (ReplyStatus.queued, ReplyStatus.given)
    if inquiry.merged_into_id is not None:
        # Answered with the inquiry it repeats: that answer as sent to the platform, never a
        # note on how another citizen was answered by phone or letter.
        shown = await session.get_one(Inquiry, inquiry.merged_into_id)
        purposes, statuses = (ReplyPurpose.answer,), (ReplyStatus.queued,)
    replies = await session.scalars(
        select(Reply)
        .where(
            Reply.inquiry_id == shown.id,
            Reply.purpose.in_(purposes),
            Reply.status.in_(statuses),
        )
        .order_by(Reply.created_at, Reply.id)
    )
    department = (
        await session.scalar(select(Department.name).where(Department.id == shown.department_id))
        if shown.department_id is not None
        else None
    )
    open_now = shown.status in (InquiryStatus.new, InquiryStatus.assigned)
    # In the citizen's words: the same function answers "查询 <reference>" in the chat.
    status = await session.scalar(
        select(func.govinbox_citizen_status(shown.status.value, shown.department_id is not None))
    )
    return Page(
        reference=inquiry.reference,
        status=str(status),
        received_at=inquiry.received_at,
        department=department,
        due=shown.reply_due_at if open_now else None,
        merged=inquiry.merged_into_id is not None,
        replies=[
            Shown(
                at=reply.given_at or reply.created_at,
                text=reply.text,
                note=_GIVEN.get(reply.given_via, "") if reply.status is ReplyStatus.given else "",
            )
            for reply in replies
        ],
    )


def beijing(moment: datetime | None, *, time: bool = True) -> str:
    """A time as the citizen reads it (Beijing)."""
    if moment is None:
        return ""
    local = moment.astimezone(CHINA)
    day = f"{local.year}年{local.month}月{local.day}日"
    return f"{day} {local:%H:%M}" if time else day


_PURGE = text("DELETE FROM answer_attempt WHERE window_start <= :expired")


async def purge(session: AsyncSession, *, now: datetime) -> int:
    """Forget the counts whose window is over; returns how many."""
    window = timedelta(minutes=settings().answer_page_window_minutes)
    result = await session.execute(_PURGE, {"expired": now - window})
    return int(getattr(result, "rowcount", 0) or 0)
