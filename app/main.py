"""The application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from app import problems
from app.accounts.router import router as accounts_router
from app.answers.router import router as answers_router
from app.api_keys.router import router as api_keys_router
from app.db import close_webhook_pools, sessionmaker
from app.deadlines.router import escalations_router
from app.deadlines.router import router as calendar_router
from app.deadlines.router import rules_router as deadline_rules_router
from app.departments.router import router as departments_router
from app.health import router as health_router
from app.inquiries.router import router as inquiries_router
from app.media.router import router as media_router
from app.observability import RequestLog, configure_logging
from app.people.router import router as people_router
from app.push.router import router as push_router
from app.ratings.router import router as ratings_router
from app.referrals.router import router as referrals_router
from app.replies.router import router as replies_router
from app.routing.router import router as routing_router
from app.schemas import ProblemDetails, known_query_only
from app.settings import settings_or_exit
from app.webhooks.router import router as webhooks_router

DESCRIPTION = """
One inbox for what citizens send government WeChat Official Accounts and Weibo accounts.

* **Admin API** (`/api/v1/admin/…`, bearer admin token): departments, people, accounts, API keys.
* **Department API** (`/api/v1/inquiries/…`, bearer department API key): a department's inquiries.
* **Webhooks** (`/webhooks/…`): the platforms' callbacks, answered in their own conventions.

Errors are RFC 9457 `application/problem+json` documents; `type` is a stable identifier.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await close_webhook_pools()
    if sessionmaker.cache_info().currsize:
        await sessionmaker().kw["bind"].dispose()


def _validation_example(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A 422 example in this operation's own terms: its first required body field, else its
    first parameter (an example about another operation's field misleads integrators)."""
    loc: list[str] = ["body"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = body.get("schema", {}).get("$ref", "")
    required = schemas.get(ref.rpartition("/")[2], {}).get("required", [])
    if required:
        loc = ["body", required[0]]
    elif operation.get("parameters"):
        parameter = operation["parameters"][0]
        loc = [parameter["in"], parameter["name"]]
    error = {"loc": loc, "msg": "Field required", "type": "missing"}
    return {
        "type": "/problems/validation-failed",
        "title": "Validation failed",
        "status": 422,
        "detail": f"{'.'.join(loc)}: Field required",
        "errors": [error],
    }


def _validation_as_problem(schema: dict[str, Any]) -> None:
    """FastAPI documents 422 as its own JSON; ours is problem+json (app/problems.py)."""
    schemas = schema.get("components", {}).get("schemas", {})
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "422" in operation.get("responses", {}):
                documented = operation["responses"]["422"].get("content", {})
                examples = documented.get("application/problem+json", {}).get("examples", {})
                body: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Problem"}}
                validation = _validation_example(operation, schemas)
                if examples:  # the route's own 422 problems, beside a validation failure
                    body["examples"] = {"validation-failed": {"value": validation}} | examples
                else:
                    body["example"] = validation
                operation["responses"]["422"] = {
                    "description": "Validation failed",
                    "content": {"application/problem+json": body},
                }


def create_app() -> FastAPI:
    configure_logging(settings_or_exit().log_level)
    app = FastAPI(
        dependencies=[Depends(known_query_only)],
        title="govinbox",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(app)
    for router in (
        health_router,
        departments_router,
        people_router,
        accounts_router,
        api_keys_router,
        push_router,
        inquiries_router,
        replies_router,
        ratings_router,
        media_router,
        routing_router,
        referrals_router,
        calendar_router,
        deadline_rules_router,
        escalations_router,
        webhooks_router,
        answers_router,
    ):
        app.include_router(router)
    app.add_middleware(problems.RefuseNulInPath)
    app.add_middleware(RequestLog)  # outermost: every answer is logged and counted

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components["Problem"] = ProblemDetails.model_json_schema()
            _validation_as_problem(schema)
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented customisation hook
    return app
