"""The platforms' callbacks. Answers follow each platform's convention, not problem+json."""

import logging
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import Counter
from sqlalchemy import select

from app.accounts.models import Account, Platform
from app.clock import NowDep
from app.db import SessionDep
from app.settings import Settings, settings
from app.webhooks import service, wechat, weibo
from app.webhooks.service import Rejected

logger = logging.getLogger("govinbox.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

DELIVERIES = Counter(
    "govinbox_webhook_deliveries_total",
    "Webhook deliveries stored, by what they became.",
    ["platform", "outcome"],
)
REJECTIONS = Counter(
    "govinbox_webhook_rejections_total",
    "Webhook requests refused, by reason.",
    ["platform", "reason"],
)
SettingsDep = Annotated[Settings, Depends(settings)]
TEXT = "text/plain; charset=utf-8"


async def _account(session: SessionDep, platform: Platform, code: str) -> Account:
    account = await session.scalar(
        select(Account).where(Account.code == code, Account.platform == platform, Account.active)
    )
    if account is None:
        raise Rejected(404, "unknown_account", f"no active {platform} account {code!r}")
    return account


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "too_large", "body over the size limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "too_large", "body over the size limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(platform: Platform, code: str, request: Request, exc: Rejected) -> Response:
    REJECTIONS.labels(platform.value, exc.reason).inc()
    logger.warning(
        "webhook rejected",
        extra={
            "platform": platform.value,
            "account_code": code,
            "reason": exc.reason,
            "detail": exc.detail,
            "status": exc.status,
            "request_id": request.scope.get("state", {}).get("request_id"),
        },
    )
    return Response(exc.detail, status_code=exc.status, media_type=TEXT)


def _outcome(delivery: service.Delivery, stored: service.Stored) -> str:
    if stored.duplicate:
        return "duplicate"
    if stored.opened:
        return "opened"
    if stored.inquiry_id is not None:
        return "appended"
    return "event" if delivery.event_type is not None else "ignored"


@router.get("/wechat/{account_code}", summary="WeChat URL verification", response_class=Response)
async def wechat_verify(
    account_code: str, request: Request, session: SessionDep, config: SettingsDep, now: NowDep
) -> Response:
    """Echo `echostr` when `signature` = sha1(sorted(token, timestamp, nonce)) matches; else 403."""
    try:
        account = await _account(session, Platform.wechat, account_code)
        echostr = wechat.verify_url(
            account,
            request.query_params,
            now=now,
            tolerance=config.webhook_timestamp_tolerance_seconds,
        )
    except Rejected as exc:
        return _refuse(Platform.wechat, account_code, request, exc)
    return Response(echostr, media_type=TEXT)


@router.post(
    "/wechat/{account_code}",
    summary="WeChat message push",
    response_class=Response,
    responses={
        200: {
            "description": "`success`, or a passive text acknowledgement (encrypted in safe mode)."
        },
        400: {"description": "Malformed, hostile or undecryptable body."},
        403: {"description": "Bad signature, stale timestamp, wrong AppID or account."},
        404: {"description": "Unknown or inactive account."},
        413: {"description": "Body over WEBHOOK_MAX_BODY_BYTES."},
        503: {"description": "Database unreachable: nothing was stored, WeChat retries."},
    },
)
async def wechat_message(
    account_code: str, request: Request, session: SessionDep, config: SettingsDep, now: NowDep
) -> Response:
    """Verify, store once, thread into an inquiry, and answer within milliseconds."""
    try:
        account = await _account(session, Platform.wechat, account_code)
        body = await _body(request, config.webhook_max_body_bytes)
        delivery, envelope = wechat.read(
            account,
            request.query_params,
            body,
            now=now,
            tolerance=config.webhook_timestamp_tolerance_seconds,
            max_bytes=config.webhook_max_body_bytes,
        )
    except Rejected as exc:
        return _refuse(Platform.wechat, account_code, request, exc)
    stored = await service.store(
        session,
        account,
        delivery,
        now=now,
        open_window=timedelta(days=config.conversation_window_days),
        reply_timestamp=envelope.timestamp,
        reply_nonce=envelope.nonce,
    )
    DELIVERIES.labels("wechat", _outcome(delivery, stored)).inc()
    return Response(
        wechat.answer(account, delivery, stored, envelope),
        media_type="application/xml" if stored.ack_text else TEXT,
    )


@router.get("/weibo/{account_code}", summary="Weibo URL verification", response_class=Response)
async def weibo_verify(
    account_code: str, request: Request, session: SessionDep, config: SettingsDep, now: NowDep
) -> Response:
    """Echo `echostr` when `signature` = sha1(sorted(app secret, timestamp ms, nonce)) matches."""
    try:
        account = await _account(session, Platform.weibo, account_code)
        echostr = weibo.verify_url(
            account,
            request.query_params,
            now=now,
            tolerance=config.webhook_timestamp_tolerance_seconds,
        )
    except Rejected as exc:
        return _refuse(Platform.weibo, account_code, request, exc)
    return Response(echostr, media_type=TEXT)


@router.post(
    "/weibo/{account_code}",
    summary="Weibo message push",
    response_class=Response,
    responses={
        200: {"description": "Empty (stops retries), or a passive text reply as JSON."},
        400: {"description": "Malformed body."},
        403: {"description": "Bad signature, stale timestamp or wrong receiver."},
        404: {"description": "Unknown or inactive account."},
        413: {"description": "Body over WEBHOOK_MAX_BODY_BYTES."},
        503: {"description": "Database unreachable: nothing was stored, Weibo retries."},
    },
)
async def weibo_message(
    account_code: str, request: Request, session: SessionDep, config: SettingsDep, now: NowDep
) -> Response:
    """Verify, store once, thread into an inquiry; unknown message types are stored and ignored."""
    try:
        account = await _account(session, Platform.weibo, account_code)
        body = await _body(request, config.webhook_max_body_bytes)
        delivery = weibo.read(
            account,
            request.query_params,
            body,
            now=now,
            tolerance=config.webhook_timestamp_tolerance_seconds,
        )
    except Rejected as exc:
        return _refuse(Platform.weibo, account_code, request, exc)
    stored = await service.store(
        session,
        account,
        delivery,
        now=now,
        open_window=timedelta(days=config.conversation_window_days),
    )
    DELIVERIES.labels("weibo", _outcome(delivery, stored)).inc()
    return Response(
        weibo.answer(account, delivery, stored),
        media_type="application/json" if stored.ack_text else TEXT,
    )
