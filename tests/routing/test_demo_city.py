"""The demo city end to end: each message posted to the webhook ends where the table says,
with no human action (issue 5's table), through the real worker."""

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import demo, worker
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryMessage
from app.referrals.models import Referral, ReferralEntry
from app.replies.models import Reply, ReplyPurpose
from app.routing import tasks
from tests.conftest import Clock, make_client
from tests.webhooks.peers import WeChat, text_xml

TOKEN, AES_KEY, APP_ID = (
    "demoToken123",
    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "wx2c2769f8efd9abc2",
)

# message -> (status, department or referral entry, kind)
TABLE: dict[str, tuple[str, str, str]] = {
    "我在合肥工作，社保断缴了三个月，现在怎么补缴？": ("assigned", "hefei-hrss", "consultation"),
    "住房公积金提取需要什么材料？租房可以提吗": ("assigned", "hefei-housing-fund", "consultation"),
    "小区旁边工地每天晚上施工到12点，吵得没法睡觉": ("assigned", "hefei-urban", "complaint"),
    "法院判决生效半年了，对方一直不执行，怎么办？": ("referred", "court-12368", "complaint"),
    "公司拖欠工资两个月了，老板不接电话": ("assigned", "hefei-hrss", "complaint"),
    "网购的东西质量有问题，商家不给退": ("referred", "consumer-12315", "complaint"),
    "建议地铁3号线早高峰增加班次": ("assigned", "hefei-transport", "suggestion"),
    "着火了！长江路有个仓库在冒大烟": ("assigned", "hefei-emergency", "help"),
    "举报某饭店使用过期食材": ("assigned", "hefei-market", "report"),
    "你好": ("assigned", "hefei-office", "other"),
}


@pytest.mark.committing
async def test_every_message_ends_where_the_table_says(
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with committing_maker.begin() as session:
        await demo.seed(
            session,
            wechat_token=TOKEN,
            wechat_aes_key=AES_KEY,
            wechat_app_id=APP_ID,
            weibo_secret="weiboSecret1",
        )
        again = await demo.seed(
            session,
            wechat_token="otherToken1",
            wechat_aes_key="B" * 43,
            wechat_app_id="wx" + "1" * 16,
            weibo_secret="otherSecret1",
        )
        assert not any(again.values())  # idempotent
    wechat = WeChat(
        "/webhooks/wechat/hefei-wechat", clock, token=TOKEN, aes_key=AES_KEY, app_id=APP_ID
    )
    async with make_client(committing_maker, clock) as client:
        for n, text in enumerate(TABLE):
            xml = text_xml(
                text, sender=f"o_citizen_{n:02d}", create_time=int(clock.now.timestamp())
            ).replace("gh_10f6c3c3ac5a", "gh_0000hefei01")
            assert (await wechat.post(client, xml)).status_code == 200
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    await worker.run(url, wait=False)

    async with committing_maker() as session:
        rows = await session.execute(
            select(InquiryMessage.content, Inquiry, Department.code)
            .join(Inquiry, Inquiry.id == InquiryMessage.inquiry_id)
            .outerjoin(Department, Department.id == Inquiry.department_id)
        )
        ended = {}
        for content, inquiry, department in rows:
            entry = await session.scalar(
                select(ReferralEntry.code)
                .join(Referral, Referral.entry_id == ReferralEntry.id)
                .where(Referral.inquiry_id == inquiry.id)
            )
            ended[content] = (
                inquiry.status.value,
                entry or department,
                inquiry.kind.value,
                inquiry,
            )
        for text, (status, target, kind) in TABLE.items():
            got_status, got_target, got_kind, inquiry = ended[text]
            assert (got_status, got_target) == (status, target), text
            assert got_kind == kind, text
            assert inquiry.routed_at is not None
            assert inquiry.routing_explanation, text
        fire = ended["着火了！长江路有个仓库在冒大烟"][3]
        assert fire.urgent
        advice = (await session.scalars(select(Reply).where(Reply.inquiry_id == fire.id))).one()
        assert (advice.purpose, advice.priority) == (ReplyPurpose.urgent_advice, 0)
        assert "119" in advice.text
        court = ended["法院判决生效半年了，对方一直不执行，怎么办？"][3]
        referral = (
            await session.scalars(select(Referral).where(Referral.inquiry_id == court.id))
        ).one()
        assert "12368" in referral.explanation
        assert court.reference in referral.explanation
