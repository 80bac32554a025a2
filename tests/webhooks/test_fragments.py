"""Routing decides on the whole message (issue 12, defect 1): citizens write in bursts, so
routing waits a quiet period after the latest fragment, and a fragment after routing decides
again while no key has acted. Driven through the webhook, the worker and the API."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import worker
from app.deadlines import tasks as deadline_tasks
from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.routing import service as routing
from app.routing import tasks
from app.routing.schemas import KindRuleCreate, RoutingRuleCreate
from tests import factories
from tests.conftest import Clock
from tests.webhooks.peers import WeChat, text_xml

PATH = "/webhooks/wechat/hefei-wechat"
FRAGMENTS = ["你好，在吗", "我想问一下社保的事", "断缴了三个月怎么补缴"]


async def _rules(session: AsyncSession) -> Department:
    hrss = await factories.department(session, "hefei-hrss")
    await routing.create_kind_rule(
        session, data=KindRuleCreate(kind="consultation", priority=1, keywords=["怎么"])
    )
    await routing.create_rule(
        session,
        data=RoutingRuleCreate(
            name="social-insurance",
            priority=1,
            keywords=["社保"],
            department_code="hefei-hrss",
            explanation="社保缴费问题属于市人社局职责",
        ),
    )
    return hrss


async def _work(maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker runs what is due now, then stops."""
    monkeypatch.setattr(tasks, "sessionmaker", lambda: maker)
    monkeypatch.setattr(deadline_tasks, "sessionmaker", lambda: maker)
    await worker.run(maker.kw["bind"].url.render_as_string(hide_password=False), wait=False)


@pytest.mark.committing
async def test_three_fragments_route_on_all_three(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: the job ran on "你好，在吗" at once; it went to the office's fallback as `other`
    # (10 working days) and the later fragments never re-routed.
    async with committing_maker.begin() as session:
        await _rules(session)
    clock.now = datetime.now(UTC)  # the worker's time: the quiet period is real here
    wechat = WeChat(PATH, clock)
    await wechat.post(committed_client, text_xml(FRAGMENTS[0], create_time=1))
    await _work(committing_maker, monkeypatch)  # within the quiet period: nothing is routed
    async with committing_maker() as session:
        assert (await session.scalars(select(Inquiry))).one().routed_at is None
    for seq, fragment in enumerate(FRAGMENTS[1:], start=2):
        clock.advance(seconds=5)
        await wechat.post(committed_client, text_xml(fragment, create_time=seq))
    async with committing_maker.begin() as session:  # the quiet period passes
        await session.execute(text("UPDATE procrastinate_jobs SET scheduled_at = now()"))
    await _work(committing_maker, monkeypatch)
    async with committing_maker() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        office = await session.scalar(select(Department).where(Department.code == "hefei-office"))
        assert office is not None
        key = await factories.api_key(session, office)
        await session.commit()
    body = (
        await committed_client.get(
            f"/api/v1/inquiries/{inquiry.reference}", headers={"Authorization": f"Bearer {key}"}
        )
    ).json()
    assert body["kind"] == "consultation"
    assert body["assignment"]["department_code"] == "hefei-hrss"
    assert body["assignment"]["decision"] == "routed"
    received = datetime.fromisoformat(body["received_at"])
    assert datetime.fromisoformat(body["reply_due_at"]) - received < timedelta(days=5)  # 2 wd


async def _routed(session: AsyncSession, account_id: int, content: str) -> Inquiry:
    account = await session.get_one(factories.Account, account_id)
    inquiry = await factories.inquiry(session, account, content=content)
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    return inquiry


async def test_a_later_fragment_reroutes_until_a_key_acts(session: AsyncSession) -> None:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, office)
    hrss = await _rules(session)
    inquiry = await _routed(session, account.id, FRAGMENTS[0])
    assert (inquiry.department_id, inquiry.kind) == (office.id, "other")
    due_before = inquiry.reply_due_at
    later = inquiry.received_at + timedelta(minutes=3)
    await factories.inquiry(session, account, content=FRAGMENTS[2].replace("断缴", "社保断缴"))
    assert await routing.reroute(session, inquiry_id=inquiry.id, now=later, keywords=[])
    await session.refresh(inquiry)
    assert (inquiry.department_id, inquiry.kind) == (hrss.id, "consultation")
    assert inquiry.reply_due_at is not None
    assert due_before is not None
    assert inquiry.reply_due_at < due_before  # 2 working days from receipt, not 10
    assert inquiry.routing_explanation == "社保缴费问题属于市人社局职责"
    # Nothing new to decide: no second re-route.
    assert not await routing.reroute(session, inquiry_id=inquiry.id, now=later, keywords=[])


async def test_no_reroute_once_a_key_has_acted(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, office)
    await _rules(session)
    inquiry = await _routed(session, account.id, FRAGMENTS[0])
    key = await factories.api_key(session, office)
    corrected = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/kind",
        json={"kind": "help", "reason": "市民求助"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert corrected.status_code == 200
    await factories.inquiry(session, account, content="社保断缴怎么补缴")
    later = inquiry.received_at + timedelta(minutes=3)
    assert not await routing.reroute(session, inquiry_id=inquiry.id, now=later, keywords=[])
    await session.refresh(inquiry)
    assert inquiry.department_id == office.id


async def test_the_preview_decides_as_routing_did_on_the_same_fragments(
    admin: httpx.AsyncClient, session: AsyncSession
) -> None:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, office)
    await _rules(session)
    inquiry = await factories.inquiry(session, account, content=FRAGMENTS[0])
    for fragment in FRAGMENTS[1:]:
        await factories.inquiry(session, account, content=fragment)
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    preview = await admin.post(
        "/api/v1/admin/routing/preview",
        json={"account_code": account.code, "text": "\n".join(FRAGMENTS)},
    )
    assert preview.status_code == 200, preview.text
    await session.refresh(inquiry)
    decided = preview.json()
    assert decided["kind"] == inquiry.kind
    assert decided["decision"]["department_code"] == "hefei-hrss"
    assert decided["decision"]["explanation"] == inquiry.routing_explanation


async def test_urgent_words_read_first_by_the_reroute_check_still_bring_the_due_forward(
    session: AsyncSession,
) -> None:
    # Review: when the re-routing check read the urgent fragment before check_urgent did and
    # the decision stood, the inquiry was urgent with the acknowledge due of a working day.
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, office)
    inquiry = await _routed(session, account.id, "你好")
    await factories.inquiry(session, account, content="家里着火了")
    later = inquiry.received_at + timedelta(minutes=1)
    assert not await routing.reroute(session, inquiry_id=inquiry.id, now=later, keywords=["着火"])
    assert inquiry.urgent
    assert inquiry.urgent_at is not None
    assert inquiry.first_response_due_at == inquiry.urgent_at + timedelta(hours=2)
    # check_urgent, running after, finds it settled.
    assert not await routing.check_urgent(
        session, inquiry_id=inquiry.id, seq=2, keywords=["着火"], now=later
    )
