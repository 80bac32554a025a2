"""GET /answer: the citizen's answer page, server-rendered for a phone (no API key: the reference
and the query code are the key)."""

from pathlib import Path

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.answers import service
from app.clock import NowDep
from app.db import SessionDep

router = APIRouter(tags=["answer page"])
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)
_templates.globals["beijing"] = service.beijing
# The address carries the code: no caching, no referrer, no indexing, nothing from elsewhere.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
NOT_FOUND = "未找到该受理编号，或查询码不正确。请核对后重试。"
TOO_MANY = "该受理编号的查询次数过多，请稍后再试。"


def _render(
    status: int,
    *,
    page: service.Page | None = None,
    notice: str = "",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    body = _templates.get_template("answer.html").render(page=page, notice=notice, ref="")
    return HTMLResponse(body, status_code=status, headers=HEADERS | (headers or {}))


@router.get(
    "/answer",
    response_class=HTMLResponse,
    summary="The citizen's answer page",
    responses={
        404: {"description": "Unknown reference or wrong code: the same page either way."},
        429: {"description": "Too many wrong codes for this reference; see Retry-After."},
    },
)
async def answer_page(
    request: Request,
    session: SessionDep,
    now: NowDep,
    ref: str = Query(default="", max_length=64, description="The inquiry's reference."),
    code: str = Query(default="", max_length=64, description="Its query code (查询码)."),
) -> HTMLResponse:
    """Without `ref` and `code`, the form; with them, the inquiry's status, due date and
    answer, or a 404 that does not say which of the two was wrong."""
    if not ref and not code:
        return _render(200)
    try:
        client = request.client.host if request.client else "unknown"
        page = await service.look(session, ref, code, client=client, now=now)
    except service.TooManyAttempts as exc:
        return _render(429, notice=TOO_MANY, headers={"Retry-After": str(exc.retry_after)})
    if page is None:
        return _render(404, notice=NOT_FOUND)
    return _render(200, page=page)
