"""Odd input on the API is a clear 4xx problem, never a 500, and changes nothing."""

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/accounts/%00",
        "/api/v1/admin/departments/a%00b",
        "/api/v1/inquiries/%00",
        "/webhooks/wechat/%00",
    ],
)
async def test_nul_in_a_path_is_404(admin: httpx.AsyncClient, path: str) -> None:
    response = await admin.get(path)
    assert response.status_code == 404
    assert response.json()["type"] == "/problems/not-found"


async def test_nul_in_a_body_is_422(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/api/v1/admin/routing/preview", json={"account_code": "x", "text": "社保\u0000补缴"}
    )
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/departments?offset=18446744073709551616",
        "/api/v1/admin/accounts?offset=9223372036854775808",
        "/api/v1/admin/routing/rules/2147483648",
        "/api/v1/admin/people/99999999999999999999",
        "/api/v1/admin/calendar/99999999999",
    ],
)
async def test_numbers_out_of_range_are_422(admin: httpx.AsyncClient, path: str) -> None:
    response = await admin.get(path)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_routes_have_a_stable_problem_type(admin: httpx.AsyncClient) -> None:
    missing = await admin.get("/api/v1/nothing-here")
    assert missing.json()["type"] == "/problems/not-found"
    wrong = await admin.put("/api/v1/admin/departments")
    assert wrong.json()["type"] == "/problems/method-not-allowed"


@pytest.mark.parametrize("value", [0, 1, "true", "false", "no"])
async def test_booleans_are_strict(admin: httpx.AsyncClient, value: object) -> None:
    # Before: `"active": 0` was taken as false.
    created = await admin.post(
        "/api/v1/admin/departments",
        json={
            "code": "hefei-office",
            "name": "合肥市人民政府办公室",
            "level": "city",
            "region_code": "340100",
            "is_supervising_office": True,
        },
    )
    assert created.status_code == 201, created.text
    response = await admin.patch("/api/v1/admin/departments/hefei-office", json={"active": value})
    assert response.status_code == 422, response.text


async def test_405_lists_every_method_of_the_path(admin: httpx.AsyncClient) -> None:
    response = await admin.put("/api/v1/admin/departments")
    assert response.status_code == 405
    assert (
        response.headers["allow"] == "GET, HEAD, POST" or response.headers["allow"] == "GET, POST"
    )
    assert set(response.json()["allowed"]) >= {"GET", "POST"}


async def test_malformed_json_without_a_token_is_401_first(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/admin/departments",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_body_that_is_not_utf8_is_422_like_malformed_json(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/api/v1/admin/departments",
        content=b'{"code": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"] == "/problems/validation-failed"


async def test_an_unknown_query_parameter_is_422(admin: httpx.AsyncClient) -> None:
    # A misspelt filter must not quietly answer everything.
    response = await admin.get("/api/v1/admin/departments?levle=city")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "levle"]
    assert (await admin.get("/api/v1/admin/departments?limit=5")).status_code == 200


async def test_the_bearer_scheme_is_case_insensitive_for_the_query_check(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/api/v1/admin/departments?levle=city", headers={"Authorization": f"bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 422
