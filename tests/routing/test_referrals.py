"""Out of scope: the referral directory, referrals by rule and by a department, urgent advice."""

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.departments.models import Department
from app.inquiries.models import InquiryStatus
from app.referrals.models import Referral
from app.replies.models import Reply, ReplyPurpose
from app.routing import service as routing
from tests import factories

ENTRIES = "/api/v1/admin/referral-entries"
NATIONAL = {
    "110",
    "119",
    "120",
    "122",
    "12315",
    "12329",
    "12333",
    "12345",
    "12348",
    "12366",
    "12368",
    "12388",
}


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(
        session, "hefei-office", name="合肥市人民政府办公室", is_supervising_office=True
    )


@pytest.fixture
async def account(session: AsyncSession, office: Department) -> Account:
    return await factories.account(session, office)


def court(**fields: object) -> dict[str, object]:
    return {
        "code": "hefei-court",
        "name": "合肥市中级人民法院",
        "handles": "本市民商事案件的执行",
        "channel": "phone",
        "contact": "0551-00000000",
        "basis": "《中华人民共和国民事诉讼法》",
        "template": "您反映的事项由{name}办理（{handles}）。请通过{contact}联系。",
        **fields,
    }


async def test_the_shipped_directory_holds_only_verified_national_numbers(
    admin: httpx.AsyncClient,
) -> None:
    entries = (await admin.get(ENTRIES, params={"limit": 100})).json()["items"]
    assert {e["contact"] for e in entries} == NATIONAL
    assert all(e["verified"] for e in entries)
    for entry in entries:
        assert "{name}" in entry["template"]
        assert "{contact}" in entry["template"]


@pytest.mark.parametrize(
    "template",
    [
        "请咨询相关部门。谢谢您的理解",
        "请联系{name}处理此事项谢谢",
        "请拨打{contact}咨询，谢谢您",
        "{name}{contact}{secret}",
    ],
)
async def test_a_generic_or_incomplete_text_is_refused(
    admin: httpx.AsyncClient, template: str
) -> None:
    response = await admin.post(ENTRIES, json=court(template=template))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unverified_entry_cannot_reach_a_citizen(
    admin: httpx.AsyncClient,
    client: httpx.AsyncClient,
    session: AsyncSession,
    account: Account,
    office: Department,
) -> None:
    created = await admin.post(ENTRIES, json=court())
    assert (created.status_code, created.json()["verified"]) == (201, False)
    as_target = await admin.post(
        "/api/v1/admin/routing/rules",
        json={
            "name": "court",
            "priority": 1,
            "referral_entry_code": "hefei-court",
            "keywords": ["判决"],
            "explanation": "执行属于法院",
        },
    )
    assert as_target.status_code == 422
    assert as_target.json()["type"] == "/problems/unverified-referral-entry"
    inquiry = await factories.inquiry(session, account, department=office)
    headers = {"Authorization": f"Bearer {await factories.api_key(session, office)}"}
    refused = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/refer",
        json={"entry_code": "hefei-court"},
        headers=headers,
    )
    assert refused.status_code == 422
    verified = await admin.patch(
        f"{ENTRIES}/hefei-court",
        json={"verified": True, "verification_note": "电话核实 2026-11-24"},
    )
    assert verified.json()["verified"] is True
    changed = await admin.patch(f"{ENTRIES}/hefei-court", json={"contact": "0551-11111111"})
    assert changed.json()["verified"] is False  # a changed number must be checked again


async def test_a_department_refers_with_a_citizen_text_and_a_queued_reply(
    client: httpx.AsyncClient, session: AsyncSession, account: Account, office: Department
) -> None:
    inquiry = await factories.inquiry(
        session, account, department=office, content="网购的东西质量有问题"
    )
    headers = {"Authorization": f"Bearer {await factories.api_key(session, office)}"}
    response = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/refer",
        json={"entry_code": "consumer-12315", "note": "也可登录全国12315平台在线投诉。"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "referred"
    referral = (await session.scalars(select(Referral))).one()
    assert "市场监管部门12315投诉举报热线" in referral.explanation
    assert "12315" in referral.explanation
    assert inquiry.reference in referral.explanation
    assert referral.explanation.endswith("也可登录全国12315平台在线投诉。")
    reply = (await session.scalars(select(Reply))).one()
    assert (reply.purpose, reply.priority, reply.text) == (
        ReplyPurpose.referral,
        1,
        referral.explanation,
    )
    again = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/refer",
        json={"entry_code": "consumer-12315"},
        headers=headers,
    )
    assert again.status_code == 409


async def test_a_rule_refers_without_human_action(
    admin: httpx.AsyncClient, session: AsyncSession, account: Account
) -> None:
    await admin.post(
        "/api/v1/admin/routing/rules",
        json={
            "name": "enforcement",
            "priority": 1,
            "referral_entry_code": "court-12368",
            "pattern": "判决.*(不执行|不履行)",
            "explanation": "生效判决的执行属于人民法院职责",
        },
    )
    preview = await admin.post(
        "/api/v1/admin/routing/preview",
        json={
            "account_code": "hefei-wechat",
            "text": "法院判决生效半年了，对方一直不执行，怎么办？",
        },
    )
    assert preview.json()["decision"]["referral_entry_code"] == "court-12368"
    inquiry = await factories.inquiry(
        session, account, content="法院判决生效半年了，对方一直不执行，怎么办？"
    )
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    assert inquiry.status is InquiryStatus.referred
    assert "12368" in (await session.scalars(select(Referral.explanation))).one()


async def test_urgent_content_queues_advice_first_and_is_still_routed(
    admin: httpx.AsyncClient, session: AsyncSession, account: Account
) -> None:
    emergency = await factories.department(session, "hefei-emergency")
    await admin.post(
        "/api/v1/admin/routing/rules",
        json={
            "name": "fire",
            "priority": 1,
            "department_code": emergency.code,
            "keywords": ["着火", "冒烟"],
            "explanation": "火灾隐患属于应急管理局职责",
        },
    )
    inquiry = await factories.inquiry(session, account, content="着火了！长江路有个仓库在冒大烟")
    assert await routing.route(
        session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=["着火", "冒大烟"]
    )
    await session.flush()
    assert (inquiry.urgent, inquiry.status, inquiry.department_id) == (
        True,
        InquiryStatus.assigned,
        emergency.id,
    )
    reply = (await session.scalars(select(Reply).where(Reply.inquiry_id == inquiry.id))).one()
    assert (reply.purpose, reply.priority) == (ReplyPurpose.urgent_advice, 0)
    assert "119" in reply.text
