"""The admin registers a department's push webhook: https only, one per department, the secret
shown once (at registration and at rotation), never read back."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.inquiries.models import AssignmentDecision, EventAction
from app.push import service
from tests import factories

PATH = "/api/v1/admin/departments/hefei-hrss/push"
URL = "https://inbox-client.hefei-hrss.example/govinbox/push"


@pytest.fixture(autouse=True)
async def hrss(session: AsyncSession) -> None:
    await factories.department(session, "hefei-hrss")


async def test_registration_answers_the_secret_once(admin: httpx.AsyncClient) -> None:
    created = await admin.post(PATH, json={"url": URL})
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body.pop("secret")
    assert secret.startswith("gvp_")
    assert len(secret) > 40
    assert body == {
        "department_code": "hefei-hrss",
        "url": URL,
        "created_at": body["created_at"],
        "last_success_at": None,
        "last_failure_at": None,
        "last_error": None,
        "consecutive_failures": 0,
    }
    read = await admin.get(PATH)
    assert read.status_code == 200
    assert read.json() == body
    assert secret not in read.text


async def test_one_registration_per_department(admin: httpx.AsyncClient) -> None:
    assert (await admin.post(PATH, json={"url": URL})).status_code == 201
    again = await admin.post(PATH, json={"url": URL + "/other"})
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/push-registration-exists"


async def test_rotation_answers_a_new_secret_once(admin: httpx.AsyncClient) -> None:
    first = (await admin.post(PATH, json={"url": URL})).json()["secret"]
    rotated = await admin.post(f"{PATH}/secret")
    assert rotated.status_code == 200
    second = rotated.json()["secret"]
    assert second != first
    read = await admin.get(PATH)
    assert first not in read.text
    assert second not in read.text


async def test_delete_then_register_again(admin: httpx.AsyncClient) -> None:
    assert (await admin.post(PATH, json={"url": URL})).status_code == 201
    deleted = await admin.delete(PATH)
    assert deleted.status_code == 200
    assert "secret" not in deleted.json()
    missing = await admin.get(PATH)
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/push-registration-not-found"
    assert (await admin.delete(PATH)).status_code == 404
    assert (await admin.post(f"{PATH}/secret")).status_code == 404
    assert (await admin.post(PATH, json={"url": URL})).status_code == 201


@pytest.mark.parametrize(
    "url",
    [
        "http://inbox-client.hefei-hrss.example/push",  # plain http to anywhere but this machine
        "http://10.0.0.8/push",
        "http://127.0.0.1.example/push",
        "ftp://127.0.0.1/push",
        "https:///no-host",
        "inbox-client.hefei-hrss.example/push",
        "https://user:pass@inbox-client.hefei-hrss.example/push",
    ],
)
async def test_a_url_that_is_not_https_is_422(admin: httpx.AsyncClient, url: str) -> None:
    response = await admin.post(PATH, json={"url": url})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await admin.get(PATH)).status_code == 404


@pytest.mark.parametrize("url", ["http://127.0.0.1:8901/push", "http://localhost:8901/push"])
async def test_plain_http_only_to_this_machine(admin: httpx.AsyncClient, url: str) -> None:
    assert (await admin.post(PATH, json={"url": url})).status_code == 201


async def test_the_admin_token_is_required(client: httpx.AsyncClient) -> None:
    assert (await client.post(PATH, json={"url": URL})).status_code == 401
    assert (await client.get(PATH)).status_code == 401


async def test_an_unknown_department_is_404(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/api/v1/admin/departments/nowhere/push", json={"url": URL})
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/department-not-found"


def test_notified_kinds_are_ones_the_change_feed_writes() -> None:
    # Migration 0018's triggers write event actions, hand-over decisions and these two.
    written = {*EventAction, *AssignmentDecision, "left_view", "escalated_to_you"}
    assert set(service.NOTIFIED_KINDS) <= {str(kind) for kind in written}


def test_a_batch_names_each_reference_once_with_its_kinds_in_order() -> None:
    rows = [("A1", "routed"), ("B2", "message_appended"), ("A1", "left_view"), ("A1", "routed")]
    assert service.batch(rows) == [
        {"reference": "A1", "kinds": ["routed", "left_view"]},
        {"reference": "B2", "kinds": ["message_appended"]},
    ]
