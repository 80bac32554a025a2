"""Errors as exceptions that carry a status; one place writes RFC 9457 problem+json."""

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, ClassVar

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db import DatabaseNotConfigured

logger = logging.getLogger("govinbox.problems")

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Base of every error the API reports; subclasses set status, title and a stable slug."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    slug: ClassVar[str] = "bad-request"
    example_detail: ClassVar[str] = ""

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    @classmethod
    def type_uri(cls) -> str:
        return f"/problems/{cls.slug}"

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            status=self.status,
            title=self.title,
            detail=self.detail,
            type_=self.type_uri(),
            instance=instance,
            **self.extensions,
        )


class NotFound(Problem):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(Problem):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Forbidden(Problem):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class Unprocessable(Problem):
    status = 422
    title = "Validation failed"
    slug = "validation-failed"


class PreconditionFailed(Problem):
    status = 412
    title = "Changed meanwhile"
    slug = "version-mismatch"
    example_detail = (
        "WX20261124-000123 is at version 57, not 42: read it again, then decide. "
        "(`current_version` holds the version.)"
    )


def merged(*docs: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Several `doc(...)` results as one: problems of the same status keep all their examples."""
    responses: dict[int | str, dict[str, Any]] = {}
    for entries in docs:
        for status, entry in entries.items():
            if status not in responses:
                responses[status] = {
                    **entry,
                    "content": {k: dict(v) for k, v in entry.get("content", {}).items()},
                }
                continue
            for media, body in entry.get("content", {}).items():
                target = responses[status].setdefault("content", {}).setdefault(media, dict(body))
                target.setdefault("examples", {}).update(body.get("examples", {}))
    return responses


class Unauthorized(Problem):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"
    example_detail = "A valid bearer token is required."


class ServiceUnavailable(Problem):
    status = 503
    title = "Service unavailable"
    slug = "service-unavailable"


def problem_body(
    *,
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    instance: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return body


def problem_response(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(body), status_code=int(body["status"]), media_type=MEDIA_TYPE, headers=headers
    )


def doc(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problems a route can raise, with an example of each."""
    responses: dict[int | str, dict[str, Any]] = {}
    for problem in problems:
        example = problem_body(
            status=problem.status,
            title=problem.title,
            detail=problem.example_detail or problem.title,
            type_=problem.type_uri(),
        )
        entry = responses.setdefault(
            problem.status,
            {
                "description": HTTPStatus(problem.status).phrase,
                "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            },
        )
        entry["content"][MEDIA_TYPE].setdefault("examples", {})[problem.slug] = {"value": example}
    return responses


def _validation_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in errors
    ]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.body(request.url.path), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc.errors())
        if _unauthenticated_before_parsing(request, errors):
            return problem_response(
                Unauthorized(Unauthorized.example_detail).body(request.url.path),
                {"WWW-Authenticate": "Bearer"},
            )
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return problem_response(
            problem_body(
                status=422,
                title="Validation failed",
                detail=f"{where}: {first['msg']}" if where else str(first["msg"]),
                type_="/problems/validation-failed",
                instance=request.url.path,
                errors=errors,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNPARSABLE_BODY:
            # FastAPI's 400 for a body that is not even text (not UTF-8): the same problem as
            # malformed JSON, so integrators meet one documented answer.
            return await _invalid(
                request,
                RequestValidationError(
                    [{"type": "json_invalid", "loc": ("body",), "msg": "the body is not UTF-8"}]
                ),
            )
        if exc.status_code == 405:
            return _method_not_allowed(request)
        phrase = HTTPStatus(exc.status_code).phrase
        return problem_response(
            problem_body(
                status=exc.status_code,
                title=phrase,
                detail=str(exc.detail) if exc.detail else phrase,
                # A stable type like every other problem's: /problems/not-found, …
                type_=f"/problems/{phrase.lower().replace(' ', '-')}",
                instance=request.url.path,
            ),
            exc.headers,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # Services check what they can first; this catches the race where two requests both pass
        # the check and the database constraint decides.
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        logger.info("integrity conflict", extra={"constraint": constraint})
        return problem_response(
            Conflict(
                "The change conflicts with data stored meanwhile; read it again and retry.",
                constraint=constraint,
            ).body(request.url.path)
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The schemas bound what they can (ids, offsets, NUL); this catches a value PostgreSQL
        # still cannot take (a number out of its range, an untranslatable character): the
        # request's transaction is rolled back, and it is the client's input, not our fault.
        logger.info("unstorable value", extra={"error": type(exc.orig).__name__})
        return problem_response(
            Unprocessable(
                "A value cannot be stored (out of range, or a character PostgreSQL refuses)."
            ).body(request.url.path)
        )

    @app.exception_handler(DatabaseNotConfigured)
    async def _not_configured(request: Request, exc: DatabaseNotConfigured) -> JSONResponse:
        return problem_response(ServiceUnavailable(str(exc)).body(request.url.path))

    @app.exception_handler(PoolTimeout)
    async def _busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        logger.error("no database connection available in time")
        return problem_response(
            ServiceUnavailable("The service is busy; retry shortly.").body(request.url.path),
            {"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated or _is_connection_error(exc):
            logger.error("database unreachable", extra={"error": type(exc.orig).__name__})
            return problem_response(
                ServiceUnavailable("The database is unreachable; retry shortly.").body(
                    request.url.path
                ),
                {"Retry-After": "5"},
            )
        raise exc


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
UNPARSABLE_BODY = "There was an error parsing the body"  # FastAPI's detail


def _unauthenticated_before_parsing(request: Request, errors: list[dict[str, Any]]) -> bool:
    """FastAPI parses a JSON body before any dependency runs, so malformed JSON would answer 422
    before authentication did: without a bearer token, the API says 401 first."""
    return (
        request.url.path.startswith("/api/")
        and any(error["type"] == "json_invalid" for error in errors)
        and not request.headers.get("authorization", "").lower().startswith("bearer ")
    )


def _method_not_allowed(request: Request) -> JSONResponse:
    """405 with every method the path has: Starlette lists only the first route that matched
    the path, and the API has a route per method."""
    allowed = {
        method
        for method in HTTP_METHODS
        for route in request.app.router.routes
        if route.matches({**request.scope, "method": method})[0] is Match.FULL
    }
    listed = ", ".join(sorted(allowed))
    return problem_response(
        problem_body(
            status=405,
            title="Method Not Allowed",
            detail=f"{request.method} is not allowed here; allowed: {listed}.",
            type_="/problems/method-not-allowed",
            instance=request.url.path,
            allowed=sorted(allowed),
        ),
        {"Allow": listed},
    )


class RefuseNulInPath:
    """ASGI middleware: a path holding NUL names nothing here (PostgreSQL text cannot even hold
    it), so it is a 404 before any route runs, never a failed statement."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope["path"]:
            response = problem_response(NotFound("No such resource.").body())
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_connection_error(exc: DBAPIError) -> bool:
    return isinstance(exc.orig, psycopg.OperationalError)
