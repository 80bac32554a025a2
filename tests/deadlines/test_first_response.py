"""The first response (issue 11, defect 5): every inquiry gets `first_response_due_at` from the
`acknowledge` rule (1 working day), or from `urgent` (2 hours, around the clock, from when the
life-and-safety words arrived); it is shown, warned about and escalated, and met only by a
person. Driven through the webhook, the routing job's functions and the API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines import alerts
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryEvent
from app.referrals.models import ReferralEntry
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock
from tests.webhooks.peers import WeChat, text_xml

PATH = "/webhooks/wechat/hefei-wechat"
HOURS = ("08:30", "17:30")
KEYWORDS = ["着火", "被困"]


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    await factories.account(session, office)
    return office


@pytest.fixture
async def headers(session: AsyncSession, office: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, office)}"}


async def arrive(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, text: str
) -> Inquiry:
    """A citizen's message through the webhook; routing runs as its job would."""
    response = await WeChat(PATH, clock).post(
        client, text_xml(text, create_time=int(clock.now.timestamp()))
    )
    assert response.status_code == 200
    inquiry = (await session.scalars(select(Inquiry).order_by(Inquiry.id.desc()))).first()
    assert inquiry is not None
    if inquiry.routed_at is None:
        assert await routing.route(session, inquiry_id=inquiry.id, now=clock.now, keywords=KEYWORDS)
    return inquiry


async def sweep(session: AsyncSession, now: datetime) -> int:
    @asynccontextmanager
    async def same() -> AsyncIterator[AsyncSession]:
        yield session

    return await alerts.sweep(same, now=now, office_hours=HOURS, fractions=[0.5, 0.8])


async def fired(session: AsyncSession, inquiry: Inquiry) -> list[tuple[str, str, int]]:
    events = await session.scalars(
        select(InquiryEvent)
        .where(
            InquiryEvent.inquiry_id == inquiry.id,
            InquiryEvent.action.in_(["deadline_warning", "escalated"]),
        )
        .order_by(InquiryEvent.id)
    )
    return [(e.details["clock"], e.action.value, e.details["level"]) for e in events]


@pytest.mark.usefixtures("office")
async def test_every_inquiry_gets_a_first_response_due_by_the_acknowledge_rule(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, headers: dict[str, str]
) -> None:
    # Before: the rule was seeded and documented; no inquiry had a first-response due.
    inquiry = await arrive(client, session, clock, "社保断缴了怎么补缴")  # Tuesday 11-24 10:00
    body = (await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=headers)).json()
    assert body["first_response_due_at"] == "2026-11-25T15:59:59Z"  # the next working day
    assert body["first_responded_at"] is None
    assert body["reply_due_at"] == "2026-12-08T15:59:59Z"  # `other`: its own 10 working days


@pytest.mark.usefixtures("office")
async def test_urgent_words_make_it_two_hours_around_the_clock(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, headers: dict[str, str]
) -> None:
    clock.now = datetime(2026, 11, 28, 14, tzinfo=UTC)  # Saturday night, 22:00 in Beijing
    inquiry = await arrive(client, session, clock, "楼道着火了，有人被困")
    body = (await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=headers)).json()
    assert body["urgent"] is True
    assert body["first_response_due_at"] == "2026-11-28T16:00:00Z"


@pytest.mark.usefixtures("office")
async def test_a_later_urgent_message_brings_the_first_response_forward(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, headers: dict[str, str]
) -> None:
    inquiry = await arrive(client, session, clock, "你好")  # Tuesday 10:00
    clock.advance(hours=3)
    await WeChat(PATH, clock).post(
        client, text_xml("家里着火了", create_time=int(clock.now.timestamp()))
    )
    assert await routing.check_urgent(
        session, inquiry_id=inquiry.id, seq=2, keywords=KEYWORDS, now=clock.now
    )
    body = (await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=headers)).json()
    assert body["first_response_due_at"] == "2026-11-24T07:00:00Z"  # 13:00 + 2 h, Beijing


async def test_the_first_response_is_warned_about_escalated_and_listed(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: Clock,
    office: Department,
    headers: dict[str, str],
) -> None:
    clock.now = datetime(2026, 11, 28, 14, tzinfo=UTC)  # Saturday 22:00 in Beijing
    inquiry = await arrive(client, session, clock, "着火了")
    assert await sweep(session, datetime(2026, 11, 28, 15, 0, tzinfo=UTC)) == 1  # 50 %, at night
    assert await sweep(session, datetime(2026, 11, 28, 15, 40, tzinfo=UTC)) == 1  # 80 %
    assert await sweep(session, datetime(2026, 11, 28, 16, 1, tzinfo=UTC)) == 1  # breached
    assert await fired(session, inquiry) == [
        ("first_response", "deadline_warning", 50),
        ("first_response", "deadline_warning", 80),
        ("first_response", "escalated", 1),
    ]
    clock.now = datetime(2026, 11, 28, 16, 1, tzinfo=UTC)
    listed = (await client.get("/api/v1/escalations", headers=headers)).json()["items"]
    assert [item["reference"] for item in listed] == [inquiry.reference]


async def test_a_persons_response_meets_it_and_automatic_text_never_does(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: Clock,
    office: Department,
    headers: dict[str, str],
) -> None:
    clock.now = datetime(2026, 11, 28, 14, tzinfo=UTC)
    inquiry = await arrive(client, session, clock, "着火了")
    # The automatic 110/119 advice went out (queued) at routing: not a person's response.
    assert inquiry.first_responded_at is None
    entry = ReferralEntry(
        code="hefei-12345",
        name="合肥12345热线",
        handles="非紧急的政务咨询",
        channel="phone",
        contact="12345",
        basis="合肥市12345政务服务便民热线管理办法",
        template="您反映的问题请联系{name}：{contact}。",
        verified=True,
    )
    session.add(entry)
    await session.flush()
    clock.now = datetime(2026, 11, 28, 15, tzinfo=UTC)
    referred = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/refer",
        json={"entry_code": "hefei-12345", "note": "已同步通知消防"},
        headers=headers,
    )
    assert referred.status_code == 200, referred.text
    assert referred.json()["first_responded_at"] == "2026-11-28T15:00:00Z"
    assert await sweep(session, datetime(2026, 11, 28, 17, tzinfo=UTC)) == 0


@pytest.mark.usefixtures("office")
async def test_urgent_words_after_the_acknowledge_breach_never_erase_it(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    # Review: the urgent due counted from late words would move the due later than the
    # acknowledge due that had already passed, and the breach would vanish.
    inquiry = await arrive(client, session, clock, "你好")  # Tuesday 11-24, due 11-25 23:59:59
    clock.now = datetime(2026, 11, 26, 2, tzinfo=UTC)  # Thursday 10:00: breached
    await WeChat(PATH, clock).post(
        client, text_xml("家里着火了", create_time=int(clock.now.timestamp()))
    )
    assert await routing.check_urgent(
        session, inquiry_id=inquiry.id, seq=2, keywords=KEYWORDS, now=clock.now
    )
    assert inquiry.first_response_due_at == datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
    listed = await session.scalars(alerts.breached(clock.now))
    assert inquiry in list(listed)


async def test_a_recorded_call_meets_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: Clock,
    office: Department,
    headers: dict[str, str],
) -> None:
    inquiry = await arrive(client, session, clock, "社保断缴了怎么补缴")  # Tuesday 10:00
    path = f"/api/v1/inquiries/{inquiry.reference}/first-response"
    call = {"channel": "phone", "at": "2026-11-24T03:00:00Z", "note": "已电话联系市民"}
    future = await client.post(path, json=call | {"at": "2026-11-25T03:00:00Z"}, headers=headers)
    assert future.status_code == 422
    clock.now = datetime(2026, 11, 24, 4, tzinfo=UTC)
    recorded = await client.post(path, json=call, headers=headers)
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["first_responded_at"] == "2026-11-24T03:00:00Z"
    events = (
        await client.get(f"/api/v1/inquiries/{inquiry.reference}/events", headers=headers)
    ).json()["items"]
    assert events[-1]["action"] == "first_response_recorded"
    # Thursday: the acknowledge due (Wednesday) has passed, and nothing fires for it.
    await session.refresh(inquiry)  # the API wrote it through a session of its own
    await sweep(session, datetime(2026, 11, 26, 2, tzinfo=UTC))
    assert [c for c, _, _ in await fired(session, inquiry) if c == "first_response"] == []
