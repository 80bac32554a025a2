"""Shared API building blocks: the schema base and pagination."""

import hashlib
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Header, Path, Query, Request, Response, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)


# Row ids are PostgreSQL integers: a larger number names nothing (and would fail in the query).
MAX_ID = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    return False


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refused here with a 422, never a failed statement.
        if isinstance(data, dict) and _holds_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, the body of every API error."""

    type: str = Field(examples=["/problems/not-found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No department with code 'hefei-xyz'."])
    instance: str | None = None
    model_config = ConfigDict(extra="allow")


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


async def paginate(
    session: AsyncSession, statement: Select[Any], page: PageParams, schema: type[S]
) -> Page[S]:
    """One page of `statement`'s rows as `schema`, with the total count."""
    total = await session.scalar(
        select(func.count()).select_from(statement.order_by(None).subquery())
    )
    rows = await session.scalars(statement.limit(page.limit).offset(page.offset))
    return Page(
        items=[schema.model_validate(row) for row in rows],
        total=total or 0,
        limit=page.limit,
        offset=page.offset,
    )


def _query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters an operation declares, computed once and kept on the route (routes
    are not hashable, so no cache can key on them)."""
    names: frozenset[str] | None = getattr(route, "govinbox_query_names", None)
    if names is None:
        fields = get_flat_params(route.dependant)
        names = frozenset(f.alias for f in fields if isinstance(f.field_info, params.Query))
        route.govinbox_query_names = names  # type: ignore[attr-defined]  # see the docstring
    return names


async def known_query_only(request: Request) -> None:
    """An API call with a query parameter its operation does not have is a 422: a misspelt
    filter must not quietly answer everything. Webhooks keep the platforms' own conventions, and
    a call without a bearer token is left to authentication, which answers first."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.url.path.startswith("/api/"):
        return
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    unknown = sorted(set(request.query_params) - _query_names(route))
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "Unknown parameter"}
                for name in unknown
            ]
        )


# Conditional GET for polling clients: a strong tag over the answer's bytes.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `If-None-Match` tag is still current."}
}


B = TypeVar("B", bound=BaseModel)


def conditional(request: Request, response: Response, body: B, *, extra: str = "") -> B | Response:
    """The body with its `ETag`, or an empty 304 when the client's tag is still current."""
    tag = '"' + hashlib.sha256((body.model_dump_json() + extra).encode()).hexdigest()[:32] + '"'
    given = [t.strip() for t in request.headers.get("if-none-match", "").split(",")]
    if tag in given or "*" in given:
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return body


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The inquiry's `version` (as listed, fed or read): a stale one answers 412 "
        "with the current version, so two clerks never overwrite each other. Optional.",
    ),
]
