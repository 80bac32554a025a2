"""The platforms' callbacks. Answers follow each platform's convention, not problem+json."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import Counter

from app.accounts.models import Platform
from app.clock import NowDep
from app.db import AutocommitDep
from app.settings import Settings, current_settings
from app.webhooks import service, wechat, weibo
from app.webhooks.service import Delivery, Rejected, Stored, WebhookAccount

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
SettingsDep = Annotated[Settings, Depends(current_settings)]
TEXT = "text/plain; charset=utf-8"
REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed, hostile or undecryptable body; missing parameters."},
    403: {"description": "Bad signature, stale timestamp, wrong AppID or addressee."},
    404: {"description": "Unknown or inactive account."},
    413: {"description": "Body over WEBHOOK_MAX_BODY_BYTES."},
    503: {"description": "Database unreachable or busy: nothing was stored; the platform retries."},
}

# Reads the verified delivery out of a request body, and says how to answer once it is stored.
Reader = Callable[[WebhookAccount, bytes], tuple[Delivery, Callable[[Stored], bytes], str]]


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


def _outcome(delivery: Delivery, stored: Stored) -> str:
    if stored.duplicate:
        return "duplicate"
    if stored.opened:
        return "opened"
    if stored.inquiry_id is not None:
        return "appended"
    return "event" if delivery.event_type is not None else "ignored"


async def _verify(
    platform: Platform,
    code: str,
    request: Request,
    connection: AutocommitDep,
    echo: Callable[[WebhookAccount], str],
) -> Response:
    try:
        echostr = echo(await service.account(connection, platform, code))
    except Rejected as exc:
        return _refuse(platform, code, request, exc)
    return Response(echostr, media_type=TEXT)


async def _receive(
    platform: Platform,
    code: str,
    request: Request,
    connection: AutocommitDep,
    config: Settings,
    now: datetime,
    read: Reader,
) -> Response:
    try:
        account = await service.account(connection, platform, code)
        delivery, answer, reply_media_type = read(
            account, await _body(request, config.webhook_max_body_bytes)
        )
    except Rejected as exc:
        return _refuse(platform, code, request, exc)
    stored = await service.store(
        connection,
        account,
        delivery,
        now=now,
        open_window=timedelta(days=config.conversation_window_days),
    )
    DELIVERIES.labels(platform.value, _outcome(delivery, stored)).inc()
    media_type = reply_media_type if stored.ack_text is not None else TEXT
    return Response(answer(stored), media_type=media_type)


@router.get("/wechat/{account_code}", summary="WeChat URL verification", response_class=Response)
async def wechat_verify(
    account_code: str,
    request: Request,
    connection: AutocommitDep,
    config: SettingsDep,
    now: NowDep,
) -> Response:
    """Echo `echostr` when `signature` = sha1(sorted(token, timestamp, nonce)) matches; else 403."""
    tolerance = config.webhook_timestamp_tolerance_seconds
    return await _verify(
        Platform.wechat,
        account_code,
        request,
        connection,
        lambda account: wechat.verify_url(
            account, request.query_params, now=now, tolerance=tolerance
        ),
    )


@router.post(
    "/wechat/{account_code}",
    summary="WeChat message push",
    response_class=Response,
    responses={
        200: {
            "description": "`success`, or a passive text acknowledgement (encrypted in safe mode)."
        },
        **REFUSALS,
    },
)
async def wechat_message(
    account_code: str,
    request: Request,
    connection: AutocommitDep,
    config: SettingsDep,
    now: NowDep,
) -> Response:
    """Verify, store once, thread into an inquiry, and answer within milliseconds."""

    def read(
        account: WebhookAccount, body: bytes
    ) -> tuple[Delivery, Callable[[Stored], bytes], str]:
        delivery, envelope = wechat.read(
            account,
            request.query_params,
            body,
            now=now,
            tolerance=config.webhook_timestamp_tolerance_seconds,
            max_bytes=config.webhook_max_body_bytes,
        )
        return (
            delivery,
            lambda stored: wechat.answer(account, delivery, stored, envelope),
            "application/xml",
        )

    return await _receive(Platform.wechat, account_code, request, connection, config, now, read)


@router.get("/weibo/{account_code}", summary="Weibo URL verification", response_class=Response)
async def weibo_verify(
    account_code: str,
    request: Request,
    connection: AutocommitDep,
    config: SettingsDep,
    now: NowDep,
) -> Response:
    """Echo `echostr` when `signature` = sha1(sorted(app secret, timestamp ms, nonce)) matches."""
    tolerance = config.webhook_timestamp_tolerance_seconds
    return await _verify(
        Platform.weibo,
        account_code,
        request,
        connection,
        lambda account: weibo.verify_url(
            account, request.query_params, now=now, tolerance=tolerance
        ),
    )


@router.post(
    "/weibo/{account_code}",
    summary="Weibo message push",
    response_class=Response,
    responses={
        200: {"description": "Empty (stops retries), or a passive text reply as JSON."},
        **REFUSALS,
    },
)
async def weibo_message(
    account_code: str,
    request: Request,
    connection: AutocommitDep,
    config: SettingsDep,
    now: NowDep,
) -> Response:
    """Verify, store once, thread into an inquiry; unknown message types are stored and ignored."""

    def read(
        account: WebhookAccount, body: bytes
    ) -> tuple[Delivery, Callable[[Stored], bytes], str]:
        delivery = weibo.read(
            account,
            request.query_params,
            body,
            now=now,
            tolerance=config.webhook_timestamp_tolerance_seconds,
        )
        return delivery, lambda stored: weibo.answer(account, delivery, stored), "application/json"

    return await _receive(Platform.weibo, account_code, request, connection, config, now, read)
