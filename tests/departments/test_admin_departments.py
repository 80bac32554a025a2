import httpx
import pytest

from tests.conftest import ADMIN_TOKEN

PROBLEM = "application/problem+json"


async def create(admin: httpx.AsyncClient, code: str, **fields: object) -> httpx.Response:
    body = {"code": code, "name": f"部门 {code}", "level": "city", "region_code": "340100"}
    body.update(fields)
    return await admin.post("/api/v1/admin/departments", json=body)


async def test_create_read_list_update_deactivate(admin: httpx.AsyncClient) -> None:
    office = await create(
        admin, "hefei-office", name="合肥市人民政府办公室", is_supervising_office=True
    )
    assert office.status_code == 201, office.text
    created = await create(
        admin,
        "hefei-hrss",
        name="合肥市人力资源和社会保障局",
        parent_code="hefei-office",
        duties="社会保险、劳动保障监察",
    )
    assert created.status_code == 201
    assert created.json()["parent_code"] == "hefei-office"

    read = await admin.get("/api/v1/admin/departments/hefei-hrss")
    assert read.json()["duties"] == "社会保险、劳动保障监察"

    page = (await admin.get("/api/v1/admin/departments", params={"limit": 1})).json()
    assert (page["total"], page["limit"], page["offset"], len(page["items"])) == (2, 1, 0, 1)
    second = (await admin.get("/api/v1/admin/departments", params={"limit": 1, "offset": 1})).json()
    assert {page["items"][0]["code"], second["items"][0]["code"]} == {"hefei-office", "hefei-hrss"}

    updated = await admin.patch("/api/v1/admin/departments/hefei-hrss", json={"duties": "就业服务"})
    assert updated.status_code == 200
    assert (updated.json()["duties"], updated.json()["name"]) == (
        "就业服务",
        "合肥市人力资源和社会保障局",
    )

    gone = await admin.delete("/api/v1/admin/departments/hefei-hrss")
    assert gone.json()["active"] is False
    active = (await admin.get("/api/v1/admin/departments", params={"active": True})).json()
    assert [d["code"] for d in active["items"]] == ["hefei-office"]


async def test_duplicate_code_is_a_conflict(admin: httpx.AsyncClient) -> None:
    await create(admin, "hefei-hrss")
    again = await create(admin, "hefei-hrss")
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    body = again.json()
    assert body["type"] == "/problems/department-exists"
    assert "hefei-hrss" in body["detail"]


async def test_second_office_for_a_region_is_refused(admin: httpx.AsyncClient) -> None:
    await create(admin, "hefei-office", is_supervising_office=True)
    again = await create(admin, "hefei-office-2", is_supervising_office=True)
    assert again.status_code == 409
    assert "hefei-office" in again.json()["detail"]


@pytest.mark.parametrize(
    ("level", "region_code"),
    [
        ("city", "340000"),
        ("province", "340100"),
        ("county", "340100"),
        ("city", "34010"),
        ("city", "3401x0"),
    ],
)
async def test_region_code_must_fit_level(
    admin: httpx.AsyncClient, level: str, region_code: str
) -> None:
    response = await create(admin, "bad-region", level=level, region_code=region_code)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["title"] == "Validation failed"
    assert body["errors"]
    assert "region_code" in body["detail"] or "region_code" in str(body["errors"])


async def test_parent_must_exist_and_not_loop(admin: httpx.AsyncClient) -> None:
    missing = await create(admin, "orphan", parent_code="nobody")
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/department-not-found"
    await create(admin, "top")
    await create(admin, "middle", parent_code="top")
    loop = await admin.patch("/api/v1/admin/departments/top", json={"parent_code": "middle"})
    assert loop.status_code == 422
    assert loop.json()["type"] == "/problems/invalid-parent"


async def test_unknown_department_is_a_problem(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/api/v1/admin/departments/nobody")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "No department with code 'nobody'."


async def test_admin_routes_need_the_admin_token(client: httpx.AsyncClient) -> None:
    bare = await client.get("/api/v1/admin/departments")
    assert bare.status_code == 401
    assert bare.headers["www-authenticate"] == "Bearer"
    assert bare.headers["content-type"] == PROBLEM
    wrong = await client.get(
        "/api/v1/admin/departments", headers={"Authorization": f"Bearer {ADMIN_TOKEN}x"}
    )
    assert wrong.status_code == 401


async def test_a_department_key_is_rejected_on_admin_routes(admin: httpx.AsyncClient) -> None:
    await create(admin, "hefei-hrss")
    issued = await admin.post(
        "/api/v1/admin/departments/hefei-hrss/api-keys", json={"client_name": "desk"}
    )
    key = issued.json()["key"]
    for method, path in [
        ("GET", "/api/v1/admin/departments"),
        ("POST", "/api/v1/admin/departments"),
        ("GET", "/api/v1/admin/accounts"),
        ("POST", "/api/v1/admin/departments/hefei-hrss/api-keys"),
    ]:
        response = await admin.request(
            method, path, headers={"Authorization": f"Bearer {key}"}, json={}
        )
        assert response.status_code == 401, (method, path)


async def test_patching_into_a_second_office_is_refused_clearly(admin: httpx.AsyncClient) -> None:
    await create(admin, "hefei-office", is_supervising_office=True)
    await create(admin, "hefei-other")
    response = await admin.patch(
        "/api/v1/admin/departments/hefei-other", json={"is_supervising_office": True}
    )
    assert response.status_code == 409
    assert response.json()["type"] == "/problems/office-exists"


async def test_a_deactivated_office_can_be_replaced(admin: httpx.AsyncClient) -> None:
    await create(admin, "hefei-office", is_supervising_office=True)
    await admin.delete("/api/v1/admin/departments/hefei-office")
    replacement = await create(admin, "hefei-office-new", is_supervising_office=True)
    assert replacement.status_code == 201
    offices = await admin.get("/api/v1/admin/departments/hefei-office-new/supervising-offices")
    assert offices.json()["nearest"] is None
