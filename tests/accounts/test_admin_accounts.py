import json
import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.departments import service as departments
from tests import factories

SECRETS = {
    "wechat_token": "spamtest",
    "wechat_encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "wechat_app_secret": "appsecret0123456789abcdef0123456",
}
SECRET_FIELDS = {*SECRETS, "weibo_app_secret"}
NEW_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


@pytest.fixture
async def owner(session: AsyncSession) -> str:
    department = await factories.department(session, "hefei-office", is_supervising_office=True)
    return department.code


def wechat_account(owner: str, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "code": "hefei-wechat",
        "platform": "wechat",
        "account_type": "wechat_service",
        "verified": True,
        "display_name": "合肥发布",
        "department_code": owner,
        "wechat_original_id": "gh_10f6c3c3ac5a",
        "wechat_app_id": "wx2c2769f8efd9abc2",
        "filing_number": "皖网信备34010012345号",
        "filing_date": "2026-01-05",
        **SECRETS,
    }
    body.update(fields)
    return body


async def test_secrets_are_write_only_and_never_logged(
    admin: httpx.AsyncClient, owner: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [await admin.post("/api/v1/admin/accounts", json=wechat_account(owner))]
    assert responses[0].status_code == 201, responses[0].text
    responses.append(await admin.get("/api/v1/admin/accounts/hefei-wechat"))
    responses.append(await admin.get("/api/v1/admin/accounts"))
    responses.append(
        await admin.patch(
            "/api/v1/admin/accounts/hefei-wechat", json={"wechat_encoding_aes_key": NEW_AES_KEY}
        )
    )
    responses.append(
        await admin.post("/api/v1/admin/accounts", json=wechat_account(owner, wechat_token="x"))
    )
    body = responses[0].json()
    assert body["has_wechat_token"]
    assert body["has_wechat_encoding_aes_key"]
    assert body["has_wechat_app_secret"]
    assert not body["has_weibo_app_secret"]
    assert body["filing_number"] == "皖网信备34010012345号"
    assert body["level"] == "city"  # the department's level when not given
    secrets = [*SECRETS.values(), NEW_AES_KEY]
    for response in responses:
        for secret in secrets:
            assert secret not in response.text
    logged = "\n".join(
        caplog.text.splitlines() + [json.dumps(r.__dict__, default=str) for r in caplog.records]
    )
    for secret in secrets:
        assert secret not in logged


async def test_new_aes_key_starts_a_rotation(
    admin: httpx.AsyncClient, owner: str, session: AsyncSession
) -> None:
    await admin.post("/api/v1/admin/accounts", json=wechat_account(owner))
    rotated = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"wechat_encoding_aes_key": NEW_AES_KEY}
    )
    assert rotated.json()["key_rotation_in_progress"] is True
    account = await accounts.get(session, code="hefei-wechat")
    assert account.wechat_encoding_aes_key == NEW_AES_KEY
    assert account.wechat_previous_encoding_aes_key == SECRETS["wechat_encoding_aes_key"]
    ended = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"end_key_rotation": True}
    )
    assert ended.json()["key_rotation_in_progress"] is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wechat_encoding_aes_key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDE"),  # 41 chars
        ("wechat_encoding_aes_key", "abcdefghijklmnopqrstuvwxyz0123456789ABCD+=="),
        ("wechat_token", "no spaces allowed"),
        ("wechat_original_id", "10f6c3c3ac5a"),
        ("account_type", "weibo"),
    ],
)
async def test_bad_account_fields_are_refused(
    admin: httpx.AsyncClient, owner: str, field: str, value: str
) -> None:
    response = await admin.post(
        "/api/v1/admin/accounts", json=wechat_account(owner, **{field: value})
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    if field in SECRET_FIELDS:
        assert value not in response.text  # not even a refused secret is echoed


async def test_weibo_account_takes_no_wechat_fields(admin: httpx.AsyncClient, owner: str) -> None:
    weibo = {
        "code": "hefei-weibo",
        "platform": "weibo",
        "account_type": "weibo",
        "display_name": "合肥发布",
        "department_code": owner,
        "weibo_uid": "1902538057",
        "weibo_app_secret": "xyz123xyz",
    }
    created = await admin.post("/api/v1/admin/accounts", json=weibo)
    assert created.status_code == 201
    assert created.json()["has_weibo_app_secret"] is True
    patched = await admin.patch(
        "/api/v1/admin/accounts/hefei-weibo", json={"wechat_token": "abcdef"}
    )
    assert patched.status_code == 422
    assert patched.json()["type"] == "/problems/wrong-platform"


async def test_operators_and_staffing_rule(
    admin: httpx.AsyncClient, owner: str, session: AsyncSession
) -> None:
    department = await factories.department(session, "other-dept")
    office = await departments.get(session, code=owner)
    first = await factories.person(session, office, "张伟", roles=["operator"])
    second = await factories.person(session, office, "李娜", roles=["operator"])
    stranger = await factories.person(session, department, "赵强")

    created = await admin.post(
        "/api/v1/admin/accounts", json=wechat_account(owner, operator_ids=[first.id])
    )
    body = created.json()
    assert (body["operator_ids"], body["operators_required"], body["staffing_ok"]) == (
        [first.id],
        2,
        False,
    )

    both = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"operator_ids": [first.id, second.id]}
    )
    assert both.json()["staffing_ok"] is True

    refused = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"operator_ids": [stranger.id]}
    )
    assert refused.status_code == 422
    assert refused.json()["type"] == "/problems/invalid-operators"


async def test_county_account_needs_one_operator(
    admin: httpx.AsyncClient, session: AsyncSession
) -> None:
    county = await factories.department(session, "ss-office", level="county", region_code="340104")
    operator = await factories.person(session, county, roles=["operator"])
    response = await admin.post(
        "/api/v1/admin/accounts",
        json=wechat_account(county.code, code="shushan-wechat", operator_ids=[operator.id]),
    )
    assert (response.json()["operators_required"], response.json()["staffing_ok"]) == (1, True)


async def test_deactivate_and_list_filters(admin: httpx.AsyncClient, owner: str) -> None:
    await admin.post("/api/v1/admin/accounts", json=wechat_account(owner))
    deactivated = await admin.delete("/api/v1/admin/accounts/hefei-wechat")
    assert deactivated.json()["active"] is False
    listed = (await admin.get("/api/v1/admin/accounts", params={"platform": "weibo"})).json()
    assert listed["total"] == 0
    listed = (await admin.get("/api/v1/admin/accounts", params={"department_code": owner})).json()
    assert [a["code"] for a in listed["items"]] == ["hefei-wechat"]
    missing = await admin.get("/api/v1/admin/accounts/nope")
    assert missing.status_code == 404


async def test_overlong_secret_is_refused_without_echo(
    admin: httpx.AsyncClient, owner: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "s" * 200
    response = await admin.post(
        "/api/v1/admin/accounts", json=wechat_account(owner, wechat_app_secret=secret)
    )
    assert response.status_code == 422
    assert secret not in response.text
    assert secret not in caplog.text


async def test_patch_keeps_the_account_consistent(
    admin: httpx.AsyncClient, owner: str, session: AsyncSession
) -> None:
    office = await departments.get(session, code=owner)
    operator = await factories.person(session, office, "张伟", roles=["operator"])
    await admin.post(
        "/api/v1/admin/accounts", json=wechat_account(owner, operator_ids=[operator.id])
    )
    wrong_type = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"account_type": "weibo"}
    )
    assert wrong_type.status_code == 422
    await factories.department(session, "hefei-hrss")
    # The old operators do not belong to the new owner.
    moved = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"department_code": "hefei-hrss"}
    )
    assert moved.status_code == 422
    assert moved.json()["type"] == "/problems/invalid-operators"
    moved = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat",
        json={"department_code": "hefei-hrss", "operator_ids": []},
    )
    assert moved.json()["department_code"] == "hefei-hrss"


async def test_operators_need_the_operator_role(
    admin: httpx.AsyncClient, owner: str, session: AsyncSession
) -> None:
    office = await departments.get(session, code=owner)
    responder = await factories.person(session, office, "李娜", roles=["responder"])
    response = await admin.post(
        "/api/v1/admin/accounts", json=wechat_account(owner, operator_ids=[responder.id])
    )
    assert response.status_code == 422
    assert "operator role" in response.json()["detail"]


@pytest.mark.parametrize("text", ["编号{ref}", "编号{reference}{0}", "x"])
async def test_ack_text_takes_only_the_reference_placeholder(
    admin: httpx.AsyncClient, owner: str, text: str
) -> None:
    response = await admin.post(
        "/api/v1/admin/accounts", json=wechat_account(owner, ack_enabled=True, ack_text=text)
    )
    assert response.status_code == 422


async def test_ack_settings(admin: httpx.AsyncClient, owner: str) -> None:
    created = await admin.post("/api/v1/admin/accounts", json=wechat_account(owner))
    assert created.json()["ack_enabled"] is False
    assert "{reference}" in created.json()["ack_text"]
    patched = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat",
        json={"ack_enabled": True, "ack_text": "已收到，编号{reference}"},
    )
    assert (patched.json()["ack_enabled"], patched.json()["ack_text"]) == (
        True,
        "已收到，编号{reference}",
    )
