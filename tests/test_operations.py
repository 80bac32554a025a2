"""Logging, errors, OpenAPI and settings: what operators and integrators see."""

import json
import logging

import httpx
import pytest
from pydantic import ValidationError

from app.main import create_app
from app.observability import JsonFormatter
from app.settings import Settings
from tests.conftest import ADMIN_TOKEN


async def test_one_json_line_per_request_without_secrets(
    admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await admin.get(
        "/api/v1/admin/departments?limit=5", headers={"X-Request-ID": "req-42"}
    )
    assert response.headers["x-request-id"] == "req-42"
    lines = [
        json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "govinbox.access"
    ]
    assert len(lines) == 1
    line = lines[0]
    assert {k: line[k] for k in ("method", "path", "route", "status", "request_id")} == {
        "method": "GET",
        "path": "/api/v1/admin/departments",
        "route": "/api/v1/admin/departments",
        "status": 200,
        "request_id": "req-42",
    }
    assert line["duration_ms"] >= 0
    assert ADMIN_TOKEN not in caplog.text
    assert ADMIN_TOKEN not in json.dumps(lines)


async def test_request_id_is_generated(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) == 32


async def test_unknown_route_and_method_are_problems(admin: httpx.AsyncClient) -> None:
    missing = await admin.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    wrong = await admin.put("/api/v1/admin/departments")
    assert wrong.status_code == 405
    assert wrong.json()["title"] == "Method Not Allowed"


async def test_malformed_json_is_a_problem(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/api/v1/admin/departments",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == "json_invalid"


def test_every_route_is_documented() -> None:
    schema = create_app().openapi()
    assert "Problem" in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation.get("description"), where
            assert operation.get("tags"), where
            if path.startswith("/api/"):
                assert "401" in operation["responses"], where
                examples = operation["responses"]["401"]["content"]["application/problem+json"][
                    "examples"
                ]
                assert examples["unauthorized"]["value"]["status"] == 401


@pytest.mark.parametrize("token", ["changeme", "secret", "short-token"])
def test_placeholder_admin_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="at least 24 characters, not a placeholder"):
        Settings(admin_token=token)


def test_log_level_is_case_insensitive() -> None:
    assert Settings(log_level="info").log_level == "INFO"


def test_every_read_schema_has_an_example() -> None:
    schemas = create_app().openapi()["components"]["schemas"]
    for name, schema in schemas.items():
        if name.endswith(("Read", "Issued")):
            assert schema.get("examples"), name


def test_validation_errors_are_documented_as_problems() -> None:
    schema = create_app().openapi()
    operation = schema["paths"]["/api/v1/admin/departments"]["post"]
    assert list(operation["responses"]["422"]["content"]) == ["application/problem+json"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_database_url_uses_psycopg() -> None:
    assert (
        Settings(database_url="postgresql://u@h/db").database_url == "postgresql+psycopg://u@h/db"
    )
    assert Settings(database_url="").database_url is None
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite:///x.db")


def test_each_operations_422_example_names_its_own_field() -> None:
    # Before: 55 operations showed the same example about body.region_code.
    paths = create_app().openapi()["paths"]

    def example(path: str, method: str) -> dict[str, object]:
        content = paths[path][method]["responses"]["422"]["content"]["application/problem+json"]
        if "examples" in content:  # beside the route's own 422 problems (Idempotency-Key)
            return content["examples"]["validation-failed"]["value"]  # type: ignore[no-any-return]
        return content["example"]  # type: ignore[no-any-return]

    assert example("/api/v1/admin/departments", "post")["errors"][0]["loc"] == ["body", "code"]
    assert example("/api/v1/admin/accounts/{code}", "get")["errors"][0]["loc"] == ["path", "code"]
    examples = {
        str(example(path, method)["errors"])
        for path, methods in paths.items()
        for method, operation in methods.items()
        if "422" in operation["responses"]
    }
    assert len(examples) > 10
