"""A rule whose target cannot take inquiries is skipped by routing, and says so; a referral entry
loses its verification only when what a citizen reads really changes."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.departments.models import Department
from tests import factories

ENTRIES = "/api/v1/admin/referral-entries"
RULES = "/api/v1/admin/routing/rules"
PREVIEW = "/api/v1/admin/routing/preview"
CHANGES = "/api/v1/admin/routing/changes"
COURT = {
    "code": "hefei-court",
    "name": "合肥市中级人民法院",
    "handles": "本市民商事案件的执行",
    "channel": "phone",
    "contact": "0551-00000000",
    "basis": "《中华人民共和国民事诉讼法》",
    "template": "您反映的事项由{name}办理（{handles}）。请通过{contact}联系。",
}


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(
        session, "hefei-office", name="合肥市人民政府办公室", is_supervising_office=True
    )


@pytest.fixture
async def account(session: AsyncSession, office: Department) -> Account:
    return await factories.account(session, office)


async def verified_court(admin: httpx.AsyncClient) -> None:
    assert (await admin.post(ENTRIES, json=COURT)).status_code == 201
    checked = await admin.patch(
        f"{ENTRIES}/hefei-court", json={"verified": True, "verification_note": "电话核实"}
    )
    assert checked.json()["verified"] is True


async def court_rule(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        RULES,
        json={
            "name": "court",
            "priority": 1,
            "referral_entry_code": "hefei-court",
            "keywords": ["判决"],
            "explanation": "生效判决的执行属于人民法院职责",
        },
    )
    assert created.status_code == 201, created.text


async def test_resending_the_same_contact_keeps_the_check(admin: httpx.AsyncClient) -> None:
    await verified_court(admin)
    audited = (await admin.get(CHANGES)).json()["total"]
    same = await admin.patch(
        f"{ENTRIES}/hefei-court",
        json={"name": COURT["name"], "contact": f" {COURT['contact']} ", "basis": COURT["basis"]},
    )
    assert same.status_code == 200, same.text
    assert same.json()["verified"] is True
    assert (await admin.get(CHANGES)).json()["total"] == audited  # nothing changed
    changed = await admin.patch(f"{ENTRIES}/hefei-court", json={"contact": "0551-11111111"})
    assert changed.json()["verified"] is False  # a new number must be checked again


@pytest.mark.usefixtures("account")
async def test_the_rule_list_shows_a_rule_whose_entry_lost_verification(
    admin: httpx.AsyncClient, session: AsyncSession
) -> None:
    await verified_court(admin)
    await court_rule(admin)
    closed = await factories.department(session, "hefei-closed")
    await admin.post(
        RULES,
        json={
            "name": "closed",
            "priority": 2,
            "department_code": "hefei-closed",
            "keywords": ["判决"],
            "explanation": "测试一个被撤销的部门",
        },
    )
    listed = {r["name"]: r for r in (await admin.get(RULES)).json()["items"]}
    assert (listed["court"]["usable"], listed["court"]["unusable_reason"]) == (True, None)

    unverified = await admin.patch(f"{ENTRIES}/hefei-court", json={"contact": "0551-11111111"})
    assert (unverified.json()["verified"], unverified.json()["rules_skipped"]) == (False, 1)
    closed.active = False
    await session.flush()

    listed = {r["name"]: r for r in (await admin.get(RULES)).json()["items"]}
    assert listed["court"]["active"] is True
    assert (listed["court"]["usable"], listed["court"]["unusable_reason"]) == (
        False,
        "referral entry hefei-court is not verified",
    )
    assert (listed["closed"]["usable"], listed["closed"]["unusable_reason"]) == (
        False,
        "department hefei-closed is deactivated",
    )
    one = (await admin.get(f"{RULES}/{listed['court']['id']}")).json()
    assert one["usable"] is False


@pytest.mark.usefixtures("account")
async def test_the_preview_reports_the_rule_it_skipped(admin: httpx.AsyncClient) -> None:
    await verified_court(admin)
    await court_rule(admin)
    text = "法院判决生效半年了，对方一直不执行"
    body = {"account_code": "hefei-wechat", "text": text}
    before = (await admin.post(PREVIEW, json=body)).json()
    assert (before["decision"]["rule_name"], before["skipped"]) == ("court", [])

    await admin.patch(f"{ENTRIES}/hefei-court", json={"active": False})
    after = await admin.post(PREVIEW, json=body)
    assert after.status_code == 200, after.text
    result = after.json()
    assert result["decision"]["rule_name"] is None  # the owner triages it
    assert result["matched"] == []
    assert [(r["name"], r["unusable_reason"]) for r in result["skipped"]] == [
        ("court", "referral entry hefei-court is inactive")
    ]
