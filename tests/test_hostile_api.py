"""Odd input on the API is a clear 4xx problem, never a 500, and changes nothing."""

import httpx
import pytest


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
