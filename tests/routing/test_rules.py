"""Routing and kind rules: matching, priorities, conditions, fallback, preview, refusals."""

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.departments.models import Department
from app.inquiries.models import Channel, InquiryEvent, InquiryKind, InquiryStatus
from app.replies.models import Reply, ReplyPurpose
from app.routing import rules
from app.routing import service as routing
from tests import factories

RULES = "/api/v1/admin/routing/rules"


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(
        session, "hefei-office", name="合肥市人民政府办公室", is_supervising_office=True
    )


@pytest.fixture
async def hrss(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss", name="合肥市人力资源和社会保障局")


@pytest.fixture
async def account(session: AsyncSession, office: Department) -> Account:
    return await factories.account(session, office)


def rule(name: str, priority: int, department: str, **fields: object) -> dict[str, object]:
    return {
        "name": name,
        "priority": priority,
        "department_code": department,
        "explanation": f"{name} 属于 {department} 职责",
        **fields,
    }


async def preview(admin: httpx.AsyncClient, text: str, **fields: object) -> dict[str, object]:
    body = {"account_code": "hefei-wechat", "text": text, **fields}
    response = await admin.post("/api/v1/admin/routing/preview", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


@pytest.mark.usefixtures("account", "hrss")
async def test_first_matching_rule_by_priority_decides(
    admin: httpx.AsyncClient, session: AsyncSession
) -> None:
    transport = await factories.department(session, "hefei-transport")
    await admin.post(RULES, json=rule("broad", 50, "hefei-transport", keywords=["社保", "地铁"]))
    await admin.post(RULES, json=rule("social-insurance", 10, "hefei-hrss", keywords=["社保"]))
    result = await preview(admin, "社保断缴了怎么补缴？")
    assert result["decision"] == {
        "department_code": "hefei-hrss",
        "referral_entry_code": None,
        "rule_name": "social-insurance",
        "explanation": "social-insurance 属于 hefei-hrss 职责",
    }
    assert [r["name"] for r in result["matched"]] == ["social-insurance", "broad"]  # type: ignore[union-attr, index]
    assert (await preview(admin, "地铁加班次"))["decision"]["department_code"] == transport.code  # type: ignore[index]


@pytest.mark.usefixtures("hrss")
async def test_no_match_falls_back_to_the_owning_department(
    admin: httpx.AsyncClient, account: Account
) -> None:
    result = await preview(admin, "你好")
    assert result["kind"] == "other"
    assert result["decision"]["department_code"] == "hefei-office"  # type: ignore[index]
    assert result["decision"]["rule_name"] is None  # type: ignore[index]
    assert "未匹配到路由规则" in result["decision"]["explanation"]  # type: ignore[index]
    assert result["matched"] == []


@pytest.mark.usefixtures("account", "hrss")
async def test_conditions_account_channel_kind_region(
    admin: httpx.AsyncClient, session: AsyncSession, office: Department
) -> None:
    await factories.account(
        session, office, code="other-wechat", wechat_original_id="gh_000000000002"
    )
    await admin.post(RULES, json=rule("by-account", 1, "hefei-hrss", account_code="other-wechat"))
    await admin.post(RULES, json=rule("comments", 2, "hefei-hrss", channel="comment"))
    await admin.post(RULES, json=rule("elsewhere", 3, "hefei-hrss", region_prefix="3402"))
    await admin.post(RULES, json=rule("complaints", 4, "hefei-hrss", kind="complaint"))
    await admin.post(
        "/api/v1/admin/routing/kind-rules",
        json={"kind": "complaint", "priority": 1, "keywords": ["投诉"]},
    )
    assert (await preview(admin, "随便问问"))["matched"] == []
    assert [
        r["name"] for r in (await preview(admin, "随便问问", channel="comment"))["matched"]
    ] == ["comments"]  # type: ignore[union-attr, index]
    complaint = await preview(admin, "我要投诉")
    assert complaint["kind"] == "complaint"
    assert [r["name"] for r in complaint["matched"]] == ["complaints"]  # type: ignore[union-attr, index]
    await admin.post(RULES, json=rule("hefei", 5, "hefei-hrss", region_prefix="3401"))
    assert [r["name"] for r in (await preview(admin, "随便问问"))["matched"]] == ["hefei"]  # type: ignore[union-attr, index]


@pytest.mark.usefixtures("account", "hrss")
async def test_pattern_rules(admin: httpx.AsyncClient) -> None:
    created = await admin.post(
        RULES, json=rule("arrears", 1, "hefei-hrss", pattern="(拖欠|欠).{0,6}工资")
    )
    assert created.status_code == 201
    assert (await preview(admin, "公司拖欠工资两个月了"))["decision"]["rule_name"] == "arrears"  # type: ignore[index]
    assert (await preview(admin, "工资什么时候发"))["decision"]["rule_name"] is None  # type: ignore[index]


@pytest.mark.usefixtures("account", "hrss")
@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("(a)\\1", "invalid escape sequence"),
        ("(?=x)", "invalid perl operator"),
        ("([a-z", "missing ]"),
        ("x" * 501, "at most 500"),
    ],
)
async def test_bad_patterns_are_refused(admin: httpx.AsyncClient, pattern: str, says: str) -> None:
    response = await admin.post(RULES, json=rule("bad", 1, "hefei-hrss", pattern=pattern))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.text


def test_a_pattern_that_would_backtrack_catastrophically_runs_in_linear_time() -> None:
    # With a backtracking engine this takes longer than the age of the universe; RE2 is linear.
    assert rules.compile_pattern("(a+)+$").search("a" * 100_000 + "!") is None
    assert rules.compile_pattern("(x+x+)+y").search("x" * 50_000) is None


@pytest.mark.usefixtures("account")
async def test_targets_must_exist_and_be_active(
    admin: httpx.AsyncClient, hrss: Department, session: AsyncSession
) -> None:
    missing = await admin.post(RULES, json=rule("nowhere", 1, "no-such-department"))
    assert missing.status_code == 404
    hrss.active = False
    await session.flush()
    inactive = await admin.post(RULES, json=rule("closed", 1, "hefei-hrss"))
    assert inactive.status_code == 422
    assert inactive.json()["type"] == "/problems/inactive-target"


@pytest.mark.usefixtures("account", "hrss")
async def test_rule_changes_and_deactivation(admin: httpx.AsyncClient) -> None:
    created = (await admin.post(RULES, json=rule("si", 1, "hefei-hrss", keywords=["社保"]))).json()
    patched = await admin.patch(f"{RULES}/{created['id']}", json={"active": False})
    assert patched.json()["active"] is False
    assert (await preview(admin, "社保"))["decision"]["rule_name"] is None  # type: ignore[index]
    listed = (await admin.get(RULES)).json()
    assert [r["name"] for r in listed["items"]] == ["si"]
    assert (await admin.get(f"{RULES}/999999")).status_code == 404
    duplicate = await admin.post(RULES, json=rule("si", 2, "hefei-hrss"))
    assert duplicate.status_code == 409


async def test_route_assigns_records_and_is_counted(
    admin: httpx.AsyncClient, session: AsyncSession, account: Account, hrss: Department
) -> None:
    await admin.post(RULES, json=rule("social-insurance", 1, "hefei-hrss", keywords=["社保"]))
    await admin.post(
        "/api/v1/admin/routing/kind-rules",
        json={"kind": "consultation", "priority": 1, "pattern": "怎么|如何|吗"},
    )
    inquiry = await factories.inquiry(session, account, content="社保断缴了怎么补缴？")
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    assert (inquiry.status, inquiry.kind, inquiry.department_id) == (
        InquiryStatus.assigned,
        InquiryKind.consultation,
        hrss.id,
    )
    assert inquiry.routing_explanation == "social-insurance 属于 hefei-hrss 职责"
    routed = (
        await session.scalars(select(InquiryEvent).where(InquiryEvent.action == "routed"))
    ).one()
    assert routed.details["department"] == "hefei-hrss"
    assert routed.reason == "social-insurance 属于 hefei-hrss 职责"
    accuracy = (await admin.get("/api/v1/admin/routing/accuracy")).json()
    assert accuracy == [
        {"rule_name": "social-insurance", "routed": 1, "marked_wrong": 0, "accuracy": 1.0}
    ]


def test_classify_by_priority() -> None:
    kinds = [
        routing.KindRule(
            id=1, kind=InquiryKind.report, priority=5, keywords=["举报"], pattern=None, active=True
        ),
        routing.KindRule(
            id=2,
            kind=InquiryKind.complaint,
            priority=10,
            keywords=["举报", "投诉"],
            pattern=None,
            active=True,
        ),
    ]
    assert rules.classify("举报某饭店", kinds)[0] is InquiryKind.report
    assert rules.classify("我要投诉", kinds)[0] is InquiryKind.complaint
    assert rules.classify("你好", kinds) == (InquiryKind.other, None)
    sample = rules.Sample("x", 1, Channel.private_message, "340100")
    assert rules.matching([], sample, InquiryKind.other) == []


@pytest.mark.usefixtures("account", "hrss")
async def test_every_rule_change_is_audited(admin: httpx.AsyncClient) -> None:
    created = (await admin.post(RULES, json=rule("si", 10, "hefei-hrss", keywords=["社保"]))).json()
    await admin.patch(
        f"{RULES}/{created['id']}", json={"priority": 5, "keywords": ["社保", "医保"]}
    )
    await admin.post(
        "/api/v1/admin/routing/kind-rules",
        json={"kind": "report", "priority": 1, "keywords": ["举报"]},
    )
    await admin.patch(
        "/api/v1/admin/referral-entries/hotline-12345",
        json={"verification_note": "复核 2026-11-24"},
    )
    trail = (await admin.get("/api/v1/admin/routing/changes")).json()["items"]
    assert [(c["entity"], c["action"]) for c in trail] == [
        ("referral_entry", "updated"),
        ("kind_rule", "created"),
        ("routing_rule", "updated"),
        ("routing_rule", "created"),
    ]
    assert trail[2]["changes"] == {"priority": [10, 5], "keywords": [["社保"], ["社保", "医保"]]}
    assert trail[2]["actor"] == "admin"
    assert trail[0]["changes"]["verification_note"][1] == "复核 2026-11-24"


COUNTS = text(
    "SELECT (SELECT count(*) FROM inquiry), (SELECT count(*) FROM inquiry_event),"
    " (SELECT count(*) FROM reply), (SELECT count(*) FROM rule_change)"
)


async def counts(session: AsyncSession) -> tuple[int, ...]:
    return tuple((await session.execute(COUNTS)).one())


@pytest.mark.usefixtures("account", "hrss")
async def test_preview_stores_nothing(admin: httpx.AsyncClient, session: AsyncSession) -> None:
    await admin.post(RULES, json=rule("si", 1, "hefei-hrss", keywords=["社保"]))
    before = await counts(session)
    await preview(admin, "社保断缴了")
    assert await counts(session) == before


@pytest.mark.usefixtures("account", "hrss")
async def test_patch_keeps_a_rule_sound(
    admin: httpx.AsyncClient, session: AsyncSession, hrss: Department
) -> None:
    created = (
        await admin.post(RULES, json=rule("si", 1, "hefei-hrss", keywords=["社保"], pattern="社保"))
    ).json()
    both = await admin.patch(
        f"{RULES}/{created['id']}",
        json={"department_code": "hefei-hrss", "referral_entry_code": "hotline-12345"},
    )
    assert both.status_code == 422
    cleared = await admin.patch(
        f"{RULES}/{created['id']}", json={"pattern": None, "region_prefix": "3401"}
    )
    assert (cleared.json()["pattern"], cleared.json()["region_prefix"]) == (None, "3401")
    await admin.patch(f"{RULES}/{created['id']}", json={"active": False})
    hrss.active = False
    await session.flush()
    reactivated = await admin.patch(f"{RULES}/{created['id']}", json={"active": True})
    assert reactivated.status_code == 422
    # A rule whose target went inactive after it was made is skipped, not followed.
    assert (await preview(admin, "社保"))["decision"]["rule_name"] is None  # type: ignore[index]


@pytest.mark.usefixtures("account", "hrss")
async def test_kind_rules_can_be_changed_and_switched_off(admin: httpx.AsyncClient) -> None:
    created = (
        await admin.post(
            "/api/v1/admin/routing/kind-rules",
            json={"kind": "report", "priority": 1, "keywords": ["举报"]},
        )
    ).json()
    assert (await preview(admin, "举报一下"))["kind"] == "report"
    off = await admin.patch(
        f"/api/v1/admin/routing/kind-rules/{created['id']}", json={"active": False}
    )
    assert off.json()["active"] is False
    assert (await preview(admin, "举报一下"))["kind"] == "other"
    assert (
        await admin.patch("/api/v1/admin/routing/kind-rules/999999", json={"active": False})
    ).status_code == 404


async def test_a_later_message_with_danger_words_is_flagged_and_advised(
    session: AsyncSession, account: Account
) -> None:
    inquiry = await factories.inquiry(session, account, content="你好")
    assert await routing.route(
        session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=["着火"]
    )
    assert not inquiry.urgent
    later = await factories.inquiry(
        session, account, content="楼道里着火了"
    )  # same citizen: appended
    assert later.id == inquiry.id
    assert await routing.check_urgent(
        session, inquiry_id=inquiry.id, seq=2, keywords=["着火"], now=inquiry.received_at
    )
    await session.flush()
    advice = (await session.scalars(select(Reply).where(Reply.inquiry_id == inquiry.id))).one()
    assert (advice.purpose, advice.priority) == (ReplyPurpose.urgent_advice, 0)


@pytest.mark.usefixtures("account", "hrss")
async def test_a_kind_rule_that_matches_nothing_is_422_not_a_retry(
    admin: httpx.AsyncClient,
) -> None:
    # Before: the database's check constraint answered 409 "read it again and retry".
    empty = await admin.post(
        "/api/v1/admin/routing/kind-rules", json={"kind": "report", "priority": 1}
    )
    assert empty.status_code == 422, empty.text
    created = (
        await admin.post(
            "/api/v1/admin/routing/kind-rules",
            json={"kind": "report", "priority": 1, "keywords": ["举报"]},
        )
    ).json()
    emptied = await admin.patch(
        f"/api/v1/admin/routing/kind-rules/{created['id']}", json={"keywords": []}
    )
    assert emptied.status_code == 422
    assert emptied.json()["type"] == "/problems/kind-rule-matches-nothing"
