"""Pauses (issue 11, defect 2 and 3): enumerated reasons; a pause credits the working days
wholly inside it; none after the due time or outside an open, undisputed inquiry; at most 2,
crediting together no more than the rule's length; `consulting_agency` and
`citizen_unreachable` stop the clock only from the supervising office's approval; the
citizen's answer ends an awaiting-citizen pause, whatever the conversation window."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.deadlines import alerts, store
from app.deadlines import service as deadlines
from app.deadlines.calendar import CHINA
from app.departments.models import Department
from app.inquiries.models import Channel, Inquiry, InquiryMessage, InquiryStatus
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock

BEIJING_NOON = 4  # 12:00 in Beijing is 04:00 UTC


def at(day: int, month: int = 10) -> datetime:
    return datetime(2026, month, day, BEIJING_NOON, tzinfo=UTC)


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def owner(session: AsyncSession, office: Department) -> Department:
    """The holder: a department under the office."""
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def inquiry(session: AsyncSession, owner: Department) -> Inquiry:
    """Received 2026-09-30, a 5-working-day rule: due Tuesday 2026-10-13 (a pinned fact)."""
    account = await factories.account(session, owner)
    inquiry = await factories.inquiry(session, account, content="你好", received_at=at(30, 9))
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    inquiry.deadline_unit, inquiry.deadline_length = "working_days", 5
    await deadlines.recount(session, inquiry, actor="test", reason="a 5-working-day rule")
    assert inquiry.reply_due_at == datetime(2026, 10, 13, 15, 59, 59, tzinfo=UTC)
    return inquiry


@pytest.fixture
async def headers(session: AsyncSession, owner: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, owner)}"}


@pytest.fixture
async def office_headers(session: AsyncSession, office: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, office)}"}


async def due(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str:
    return str((await client.get(path, headers=headers)).json()["reply_due_at"])


async def pause(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], reason: str = "awaiting_citizen"
) -> httpx.Response:
    return await client.post(
        f"{path}/pause", json={"reason": reason, "note": "请补充材料"}, headers=headers
    )


async def test_a_pause_credits_the_working_days_wholly_inside_it(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str], clock: Clock
) -> None:
    # The README's example. Before: (10-09, 10-12] counted Saturday 10-10 (调休) and Monday
    # 10-12, a day on which the clock ran: 2 days, due 10-15.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)  # Friday 2026-10-09
    assert (await pause(client, path, headers)).status_code == 200
    assert (await pause(client, path, headers)).status_code == 409  # already stopped
    clock.now = at(12)  # Monday 2026-10-12
    resumed = await client.post(f"{path}/resume", json={"note": "已补充"}, headers=headers)
    # Wholly inside: Saturday 10-10 (a 调休 working day) and Sunday 10-11 (off): 1 working day.
    assert resumed.json()["reply_due_at"] == "2026-10-14T15:59:59Z"
    events = (await client.get(f"{path}/events", headers=headers)).json()["items"]
    assert [e["action"] for e in events[-2:]] == ["paused", "resumed"]


async def test_overnight_pauses_credit_nothing_and_at_most_two_are_allowed(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str], clock: Clock
) -> None:
    # Before: each evening-to-morning pause credited a whole working day, without limit.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    for evening in (9, 10):  # Friday 18:00 → Saturday 09:00; Saturday 18:00 → Sunday 09:00
        clock.now = datetime(2026, 10, evening, 10, tzinfo=UTC)
        assert (await pause(client, path, headers)).status_code == 200
        clock.now = datetime(2026, 10, evening + 1, 1, tzinfo=UTC)
        assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 200
    assert await due(client, path, headers) == "2026-10-13T15:59:59Z"  # unmoved
    third = await pause(client, path, headers)
    assert third.status_code == 409
    assert "At most 2 pauses" in third.json()["detail"]


async def test_pauses_credit_no_more_than_the_rules_length(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str], clock: Clock
) -> None:
    # Before: a pause credited every working day it spanned, however many.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)
    assert (await pause(client, path, headers)).status_code == 200
    clock.now = at(30)  # three weeks later: 14 working days wholly inside
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 200
    # Capped at the rule's 5 working days: 10-13 + 5 working days = 10-20.
    assert await due(client, path, headers) == "2026-10-20T15:59:59Z"
    assert (await pause(client, path, headers)).status_code == 409  # the whole length is used


async def test_no_pause_after_the_due_time_nor_once_answered_ended_or_disputed(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    # Before: a department could pause after the due time, in `replied` and while awaiting
    # arbitration, pushing the due date back after the fact.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(14)  # the day after the due date
    late = await pause(client, path, headers)
    assert late.status_code == 409
    assert "before the due time" in late.json()["detail"]
    clock.now = at(9)
    inquiry.arbitration_office_id = inquiry.department_id
    await session.flush()
    assert (await pause(client, path, headers)).status_code == 409
    inquiry.arbitration_office_id = None
    inquiry.status = InquiryStatus.replied
    await session.flush()
    assert (await pause(client, path, headers)).status_code == 409
    inquiry.status = InquiryStatus.closed
    await session.flush()
    assert (await pause(client, path, headers)).status_code == 409


@pytest.mark.parametrize("reason", ["consulting_agency", "citizen_unreachable"])
async def test_these_reasons_stop_the_clock_only_from_the_offices_approval(
    client: httpx.AsyncClient,
    inquiry: Inquiry,
    headers: dict[str, str],
    office_headers: dict[str, str],
    clock: Clock,
    reason: str,
) -> None:
    # Before: the department stopped the clock itself, at once.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)  # Friday
    assert (await pause(client, path, headers, reason)).status_code == 200
    # Not stopped yet: nothing to resume; the holder cannot decide for itself.
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 409
    decision = {"approve": True, "note": "同意：已正式征求意见"}
    own = await client.post(f"{path}/pause/decision", json=decision, headers=headers)
    assert own.status_code == 403
    clock.now = at(12)  # Monday: the office approves; the clock stops from now
    approved = await client.post(f"{path}/pause/decision", json=decision, headers=office_headers)
    assert approved.status_code == 200, approved.text
    clock.now = at(15)  # Thursday
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 200
    # Wholly inside (10-12, 10-15): Tuesday and Wednesday, 2 working days; the days before the
    # approval count for nothing. 10-13 + 2 working days = 10-15.
    assert await due(client, path, headers) == "2026-10-15T15:59:59Z"
    events = (await client.get(f"{path}/events", headers=headers)).json()["items"]
    assert [e["action"] for e in events[-3:]] == ["pause_requested", "pause_decided", "resumed"]


async def test_a_refused_pause_leaves_the_clock_running(
    client: httpx.AsyncClient,
    inquiry: Inquiry,
    headers: dict[str, str],
    office_headers: dict[str, str],
    clock: Clock,
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)
    assert (await pause(client, path, headers, "citizen_unreachable")).status_code == 200
    refused = await client.post(
        f"{path}/pause/decision",
        json={"approve": False, "note": "请继续联系"},
        headers=office_headers,
    )
    assert refused.status_code == 200
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 409
    again = await client.post(
        f"{path}/pause/decision", json={"approve": True, "note": "同意"}, headers=office_headers
    )
    assert again.status_code == 409  # nothing awaits a decision
    assert await due(client, path, headers) == "2026-10-13T15:59:59Z"


async def test_only_enumerated_reasons_and_only_a_stopped_clock_resumes(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str]
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    bad = await client.post(
        f"{path}/pause", json={"reason": "leader_on_holiday", "note": "领导休假"}, headers=headers
    )
    assert bad.status_code == 422
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 409


# The second case: a send time a year ahead (the sender's word) credits only the time that passed.
@pytest.mark.parametrize("sent_ahead", [timedelta(0), timedelta(days=365)])
async def test_the_citizens_next_message_ends_an_awaiting_citizen_pause(
    client: httpx.AsyncClient,
    session: AsyncSession,
    owner: Department,
    headers: dict[str, str],
    clock: Clock,
    sent_ahead: timedelta,
) -> None:
    account = await factories.account(
        session, owner, code="pause-wechat", wechat_original_id="gh_000000000008"
    )
    inquiry = await factories.inquiry(session, account, content="你好", received_at=at(8))
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    due_before = inquiry.reply_due_at
    clock.now = at(9)
    assert (await pause(client, f"/api/v1/inquiries/{inquiry.reference}", headers)).is_success
    appended = await factories.inquiry(session, account, content="材料已补充", received_at=at(13))
    assert appended.id == inquiry.id  # the citizen's answer joins the inquiry
    message = await session.scalar(
        select(InquiryMessage).where(
            InquiryMessage.inquiry_id == inquiry.id, InquiryMessage.seq == 2
        )
    )
    assert message is not None
    message.sent_at = at(13) + sent_ahead
    assert await routing.citizen_answered(session, inquiry_id=inquiry.id, seq=2, now=at(13))
    await session.refresh(inquiry)
    work = await store.load(session)
    assert due_before is not None
    assert inquiry.reply_due_at is not None
    # Wholly inside (10-09, 10-13): Saturday 10-10 (调休) and Monday 10-12: 2 working days.
    moved = work.add_working_days(due_before.astimezone(CHINA).date(), 2)[0]
    assert inquiry.reply_due_at.astimezone(CHINA).date() == moved
    assert not await routing.citizen_answered(
        session, inquiry_id=inquiry.id, seq=2, now=at(13)
    )  # once


async def test_an_answer_after_the_conversation_window_still_ends_the_pause(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    # Issue 11, defect 3. Before: an answer 11 days after the last message (window: 7 days)
    # opened a new inquiry, and this one's clock stayed stopped for ever.
    clock.now = at(9)
    assert (await pause(client, f"/api/v1/inquiries/{inquiry.reference}", headers)).is_success
    account = await session.get_one(Account, inquiry.account_id)
    answer = await factories.inquiry(session, account, content="材料已补充", received_at=at(12))
    assert answer.id == inquiry.id
    assert await routing.citizen_answered(session, inquiry_id=inquiry.id, seq=2, now=at(12))
    await session.refresh(inquiry)
    # Wholly inside (10-09, 10-12): Saturday 10-10 (调休): 1 working day.
    assert inquiry.reply_due_at == datetime(2026, 10, 14, 15, 59, 59, tzinfo=UTC)


async def test_an_hours_deadline_gets_the_pause_back_even_within_a_day(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    inquiry.received_at = datetime(2026, 10, 9, 4, tzinfo=UTC)
    inquiry.deadline_unit, inquiry.deadline_length = "hours", 2
    await deadlines.recount(session, inquiry, actor="test", reason="a 2-hour rule")
    assert inquiry.reply_due_at == datetime(2026, 10, 9, 6, tzinfo=UTC)
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = datetime(2026, 10, 9, 4, 10, tzinfo=UTC)
    assert (await pause(client, path, headers)).status_code == 200
    clock.now = datetime(2026, 10, 9, 4, 40, tzinfo=UTC)
    resumed = await client.post(f"{path}/resume", json={}, headers=headers)
    assert resumed.json()["reply_due_at"] == "2026-10-09T06:30:00Z"


async def test_an_ended_inquiry_cannot_be_resumed_and_an_older_message_ends_nothing(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    # Review: a pause left running when the inquiry ended could still be resumed, moving the
    # ended inquiry's due; and a message sent before the pause (a late job) ended it at once.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)
    assert (await pause(client, path, headers)).status_code == 200
    assert not await routing.citizen_answered(session, inquiry_id=inquiry.id, seq=1, now=at(9))
    ended = await client.post(f"{path}/invalid", json={"reason": "重复的测试消息"}, headers=headers)
    assert ended.status_code == 200
    clock.now = at(30)
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 409
    assert await due(client, path, headers) == "2026-10-13T15:59:59Z"


async def test_days_a_pause_gave_back_are_not_elapsed_time_for_warnings(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    # Review: the share of working time counted the paused days as elapsed, so a warning fired
    # on the first day after a long pause.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)  # Friday; due Tuesday 10-13
    assert (await pause(client, path, headers)).status_code == 200
    clock.now = at(16)  # Friday a week later: 5 working days wholly inside, the whole length
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 200
    assert await due(client, path, headers) == "2026-10-20T15:59:59Z"
    await session.refresh(inquiry)  # the API wrote it through a session of its own
    inquiry.first_responded_at = inquiry.received_at  # this test follows the reply clock

    @asynccontextmanager
    async def same() -> AsyncIterator[AsyncSession]:
        yield session

    async def sweep(now: datetime) -> int:
        return await alerts.sweep(
            same, now=now, office_hours=("08:30", "17:30"), fractions=[0.5, 0.8]
        )

    # Friday 10-16, 10:00 in Beijing: of 9 working days (09-30, 10-20], 6 have passed by the
    # calendar but 5 of them were given back: 1.2 of 4 working days, 30 %.
    assert await sweep(datetime(2026, 10, 16, 2, tzinfo=UTC)) == 0
    # Monday 10-19, 14:00: 2.6 of 4, 65 %: the 50 % warning only.
    assert await sweep(datetime(2026, 10, 19, 6, tzinfo=UTC)) == 1


async def test_an_extension_can_be_asked_for_while_the_clock_stands_still(
    client: httpx.AsyncClient,
    inquiry: Inquiry,
    headers: dict[str, str],
    office_headers: dict[str, str],
    clock: Clock,
) -> None:
    # Review: the request compared now with the un-moved due time, so a paused inquiry past its
    # original due date could not ask for more time.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)
    assert (await pause(client, path, headers)).status_code == 200
    clock.now = at(14)  # the original due date (10-13) has passed; the clock stands still
    asked = await client.post(
        f"{path}/extension", json={"working_days": 2, "reason": "需要现场核查"}, headers=headers
    )
    assert asked.status_code == 200, asked.text
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 200
    decided = await client.post(
        f"{path}/extension/decision",
        json={"approve": True, "note": "同意延期"},
        headers=office_headers,
    )
    # (10-09, 10-14): 10-10 (调休), 10-12, 10-13 wholly inside: 3; then 2 more for the extension.
    assert decided.json()["original_due_at"] == "2026-10-16T15:59:59Z"
    assert decided.json()["reply_due_at"] == "2026-10-20T15:59:59Z"


async def test_a_pause_on_a_comment_never_makes_it_the_citizens_conversation(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    # Review: the pause turned a comment into the thread the citizen's private messages join.
    inquiry.channel = Channel.comment
    inquiry.accepts_messages = False
    await session.flush()
    clock.now = at(9)
    assert (await pause(client, f"/api/v1/inquiries/{inquiry.reference}", headers)).is_success
    await session.refresh(inquiry)
    assert inquiry.accepts_messages is False
