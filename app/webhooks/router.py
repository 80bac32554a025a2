"""The platforms' callbacks. Answers follow each platform's convention, not problem+json."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import Counter
from psycopg import errors
from psycopg_pool import PoolTimeout
from starlette.requests import ClientDisconnect

from app.accounts.models import Platform
from app.clock import NowDep
from app.db import Connections, WebhookConnectionsDep
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
    408: {"description": "Body not received within WEBHOOK_BODY_TIMEOUT_SECONDS."},
    413: {"description": "Body over WEBHOOK_MAX_BODY_BYTES."},
    503: {
        "description": "Database unreachable, busy or locked past WEBHOOK_DEADLINE_SECONDS: "
        "nothing was stored; `Retry-After` says when to retry (the platform retries anyway)."
    },
}
VERIFY_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: REFUSALS[status] for status in (400, 403, 404, 503)
}
RETRY_AFTER = "5"  # as the API's own 503s
_checks: set[asyncio.Task[None]] = set()  # a running check of the pool's idle connections
T = TypeVar("T")

# The query parameters the platforms sign and send: declared for integrators, read by the
# platform modules (they are checked there, in the platform's own order and convention).
Parameter = tuple[str, bool, dict[str, Any], str]
WECHAT_SIGNED: list[Parameter] = [
    ("signature", True, {"type": "string"}, "sha1 of the sorted token, timestamp and nonce."),
    ("timestamp", True, {"type": "string", "pattern": "^[0-9]{1,10}$"}, "Unix seconds."),
    ("nonce", True, {"type": "string", "pattern": "^[A-Za-z0-9]{1,64}$"}, "Random."),
]
WECHAT_MESSAGE: list[Parameter] = [
    ("openid", False, {"type": "string"}, "The sender (not trusted: the body says it)."),
    ("encrypt_type", False, {"type": "string", "enum": ["raw", "aes"]}, "aes: safe mode."),
    ("msg_signature", False, {"type": "string"}, "In compatible and safe modes."),
]
WEIBO_SIGNED: list[Parameter] = [
    ("signature", True, {"type": "string"}, "sha1 of the sorted app secret, timestamp, nonce."),
    ("timestamp", True, {"type": "string", "pattern": "^[0-9]{1,13}$"}, "Unix milliseconds."),
    ("nonce", True, {"type": "string", "pattern": "^[A-Za-z0-9]{1,64}$"}, "Random."),
]
ECHOSTR: list[Parameter] = [("echostr", True, {"type": "string"}, "Echoed when verified.")]
WEIBO_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["type", "sender_id", "receiver_id", "created_at"],
    "properties": {
        "type": {"type": "string", "examples": ["text"]},
        "sender_id": {"type": ["integer", "string"]},
        "receiver_id": {"type": ["integer", "string"]},
        "created_at": {"type": "string", "examples": ["Tue Nov 24 10:00:00 +0800 2026"]},
        "text": {"type": "string"},
        "data": {"type": ["object", "null"]},
    },
}


def _query(*groups: list[Parameter]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": required, "schema": schema, "description": text}
        for group in groups
        for name, required, schema, text in group
    ]


# Reads the verified delivery out of a request body, and says how to answer once it is stored.
Reader = Callable[[WebhookAccount, bytes], tuple[Delivery, Callable[[Stored], bytes], str]]


async def _body(request: Request, limit: int, within: float) -> bytes:
    """The whole body, size-bounded and within `within` seconds: read before any database
    connection is taken, so trickled bodies cannot hold the pool."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "too_large", "body over the size limit")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(within):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Rejected(413, "too_large", "body over the size limit")
                chunks.append(chunk)
    except TimeoutError:
        raise Rejected(408, "slow_body", "body not received in time") from None
    except ClientDisconnect:
        raise Rejected(400, "client_disconnected", "the client left before the body") from None
    return b"".join(chunks)


class Budget:
    """What is left of the webhook's time, counted from its arrival."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise Rejected(503, "deadline", "no time left to store it")
        return left


def _unavailable(exc: Exception) -> Rejected | None:
    """A database error the platform should retry (503), named for the log; None: not one."""
    if isinstance(exc, PoolTimeout):
        # The pool cannot tell a server that is away from one whose connections are all busy;
        # /readyz, with a connection of its own, says which.
        return Rejected(503, "no_connection", "no database connection within the deadline")
    if isinstance(exc, errors.QueryCanceled):
        return Rejected(503, "deadline", "the database did not finish in time")
    if isinstance(exc, errors.LockNotAvailable):
        return Rejected(503, "lock_timeout", "a lock was held too long")
    # Class 40 (serialization failure, deadlock): psycopg has no common base class for them.
    if isinstance(exc, errors.UniqueViolation) or (
        isinstance(exc, psycopg.Error) and (exc.sqlstate or "").startswith("40")
    ):
        return Rejected(503, "conflict", "a concurrent delivery or transaction came first")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return Rejected(503, "database_unreachable", "the database is unreachable")
    if isinstance(exc, psycopg.DatabaseError):
        # Anything else the database says (a read-only standby after a failover, say): nothing
        # was stored, and the platform's retry may find it well again. Never a 500.
        return Rejected(503, "database_error", f"the database refused it: {type(exc).__name__}")
    return None


async def _with_database(
    connections: Connections, budget: Budget, work: Callable[[Any], Awaitable[T]]
) -> T:
    """Run `work` on a webhook connection within the budget; database trouble becomes a 503."""
    try:
        async with connections.connection(timeout=budget.left()) as connection:
            return await work(connection)
    except psycopg.DataError as exc:
        # A value PostgreSQL cannot take (the parsers refuse what they know of first).
        raise Rejected(400, "unstorable", "a field holds a value that cannot be stored") from exc
    except (psycopg.Error, PoolTimeout) as exc:
        refusal = _unavailable(exc)
        if refusal is None:
            raise
        if refusal.reason == "database_unreachable" and not _checks:
            # Other idle connections are likely dead too (a restart): replace them now, once.
            check = asyncio.get_running_loop().create_task(connections.check())
            _checks.add(check)
            check.add_done_callback(_checks.discard)
        raise refusal from exc


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
    headers = {"Retry-After": RETRY_AFTER} if exc.status == 503 else None
    return Response(exc.detail, status_code=exc.status, media_type=TEXT, headers=headers)


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
    connections: Connections,
    config: Settings,
    echo: Callable[[WebhookAccount], str],
) -> Response:
    budget = Budget(config.webhook_deadline_seconds)

    async def lookup(connection: service.Connection) -> WebhookAccount:
        return await service.account(connection, platform, code, seconds=budget.left())

    try:
        echostr = echo(await _with_database(connections, budget, lookup))
    except Rejected as exc:
        return _refuse(platform, code, request, exc)
    return Response(echostr, media_type=TEXT)


async def _receive(
    platform: Platform,
    code: str,
    request: Request,
    connections: Connections,
    config: Settings,
    now: datetime,
    read: Reader,
) -> Response:
    # Every answer within WEBHOOK_DEADLINE_SECONDS of arrival: the body, the wait for a
    # connection, the lock waits and the intake all spend the same budget.
    budget = Budget(config.webhook_deadline_seconds)

    async def intake(connection: service.Connection) -> tuple[Stored, bytes, str]:
        account = await service.account(connection, platform, code, seconds=budget.left())
        delivery, answer, reply_media_type = read(account, body)
        stored = await service.store(
            connection,
            account,
            delivery,
            now=now,
            open_window=timedelta(days=config.conversation_window_days),
            quiet=timedelta(seconds=config.routing_quiet_seconds),
            seconds=budget.left(),
        )
        DELIVERIES.labels(platform.value, _outcome(delivery, stored)).inc()
        media_type = reply_media_type if stored.ack_text is not None else TEXT
        return stored, answer(stored), media_type

    try:
        body = await _body(
            request,
            config.webhook_max_body_bytes,
            min(config.webhook_body_timeout_seconds, budget.left()),
        )
        _, content, media_type = await _with_database(connections, budget, intake)
    except Rejected as exc:
        return _refuse(platform, code, request, exc)
    return Response(content, media_type=media_type)


@router.get(
    "/wechat/{account_code}",
    summary="WeChat URL verification",
    response_class=Response,
    responses={200: {"description": "The `echostr`, echoed as text."}, **VERIFY_REFUSALS},
    openapi_extra={"parameters": _query(WECHAT_SIGNED, ECHOSTR)},
)
async def wechat_verify(
    account_code: str,
    request: Request,
    connections: WebhookConnectionsDep,
    config: SettingsDep,
    now: NowDep,
) -> Response:
    """Echo `echostr` when `signature` = sha1(sorted(token, timestamp, nonce)) matches; else 403."""
    tolerance = config.webhook_timestamp_tolerance_seconds
    return await _verify(
        Platform.wechat,
        account_code,
        request,
        connections,
        config,
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
    openapi_extra={
        "parameters": _query(WECHAT_SIGNED, WECHAT_MESSAGE),
        "requestBody": {
            "required": True,
            "description": "The message or event as WeChat's XML; in safe mode an `Encrypt` "
            "envelope (protocol brief §1–2).",
            "content": {"text/xml": {"schema": {"type": "string", "maxLength": 65536}}},
        },
    },
)
async def wechat_message(
    account_code: str,
    request: Request,
    connections: WebhookConnectionsDep,
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

    return await _receive(Platform.wechat, account_code, request, connections, config, now, read)


@router.get(
    "/weibo/{account_code}",
    summary="Weibo URL verification",
    response_class=Response,
    responses={200: {"description": "The `echostr`, echoed as text."}, **VERIFY_REFUSALS},
    openapi_extra={"parameters": _query(WEIBO_SIGNED, ECHOSTR)},
)
async def weibo_verify(
    account_code: str,
    request: Request,
    connections: WebhookConnectionsDep,
    config: SettingsDep,
    now: NowDep,
) -> Response:
    """Echo `echostr` when `signature` = sha1(sorted(app secret, timestamp ms, nonce)) matches."""
    tolerance = config.webhook_timestamp_tolerance_seconds
    return await _verify(
        Platform.weibo,
        account_code,
        request,
        connections,
        config,
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
    openapi_extra={
        "parameters": _query(WEIBO_SIGNED),
        "requestBody": {
            "required": True,
            "description": "The fan-service message as JSON (protocol brief §5).",
            "content": {"application/json": {"schema": WEIBO_MESSAGE}},
        },
    },
)
async def weibo_message(
    account_code: str,
    request: Request,
    connections: WebhookConnectionsDep,
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
            window=timedelta(days=config.webhook_sent_at_window_days),
        )
        return delivery, lambda stored: weibo.answer(account, delivery, stored), "application/json"

    return await _receive(Platform.weibo, account_code, request, connections, config, now, read)
