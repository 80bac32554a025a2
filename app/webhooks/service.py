"""Store a verified platform delivery in one statement; the platforms' own keys decide races.

The webhook path talks to psycopg directly (two prepared statements, no ORM, no SQL building per
request): it is the one path the platforms time, and bench/intake.py measures it against pgbench.
"""

import re
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from app.accounts.models import Platform
from app.accounts.schemas import ACCOUNT_CODE_PATTERN
from app.answers.service import CODE_LINE
from app.inquiries.models import Channel
from app.settings import settings


class Rejected(Exception):
    """A webhook request we refuse; answered in the platform's convention, never as `success`."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason  # a short label for logs and metrics
        self.detail = detail


@dataclass(frozen=True)
class WebhookAccount:
    """What a webhook needs of an account, read with one plain query (no ORM on the hot path)."""

    id: int
    code: str
    platform: Platform
    wechat_token: str | None
    wechat_encoding_aes_key: str | None
    wechat_previous_encoding_aes_key: str | None
    wechat_app_id: str | None
    wechat_original_id: str | None
    weibo_uid: str | None
    weibo_app_secret: str | None
    ack_enabled: bool
    ack_text: str


_COLUMNS = ", ".join(field.name for field in fields(WebhookAccount))  # ours, not input
ACCOUNT_SQL = (
    f"SELECT {_COLUMNS} FROM account"  # noqa: S608
    " WHERE code = %(code)s AND platform = %(platform)s AND active"
)


Connection = psycopg.AsyncConnection[Any]
Row = TypeVar("Row")
# For the next statement alone: in a pipeline the two statements share one implicit transaction
# (autocommit), so the local setting ends with it and nothing lingers on a pooled connection.
TIMEOUT_SQL = "SELECT set_config('statement_timeout', %s, true)"


async def _fetch_one(
    connection: Connection, query: str, params: dict[str, Any], row: type[Row], *, seconds: float
) -> Row | None:
    """One statement that PostgreSQL cancels after `seconds` (lock waits included), sent
    in the same round trip as the setting that bounds it."""
    async with connection.cursor(row_factory=class_row(row)) as cursor:
        async with connection.pipeline():
            await connection.execute(TIMEOUT_SQL, (str(max(1, int(seconds * 1000))),))
            await cursor.execute(query, params)
        return await cursor.fetchone()


_ACCOUNT_CODE = re.compile(ACCOUNT_CODE_PATTERN)


async def account(
    connection: Connection, platform: Platform, code: str, *, seconds: float
) -> WebhookAccount:
    """The active account a webhook URL names; Rejected (404) if there is none."""
    if not _ACCOUNT_CODE.fullmatch(code):
        raise Rejected(404, "unknown_account", "no account has such a code")
    found = await _fetch_one(
        connection,
        ACCOUNT_SQL,
        {"code": code, "platform": platform.value},
        WebhookAccount,
        seconds=seconds,
    )
    if found is None:
        raise Rejected(404, "unknown_account", f"no active {platform} account {code!r}")
    return replace(found, platform=Platform(found.platform))


@dataclass(frozen=True)
class Delivery:
    """One message or event from a platform, verified and normalised."""

    dedupe_key: str  # the platform's retry identity (see InboxEvent)
    sender_id: str
    msg_type: str
    event_type: str | None  # 'subscribe' / 'unsubscribe' normalised across platforms
    sent_at: datetime
    payload: str
    content: str | None  # what the citizen asked, as text; None when nothing was asked
    platform_msg_id: str | None = None
    channel: Channel = Channel.private_message
    # The request's timestamp and nonce, kept for an encrypted acknowledgement's envelope.
    reply_timestamp: str | None = None
    reply_nonce: str | None = None
    # Subscription-notification decisions the event carries: (template id, accept | reject).
    grants: tuple[tuple[str, str], ...] = ()
    # A picture, voice or video's media id, fetched before the platform drops it.
    media_id: str | None = None


@dataclass(frozen=True)
class Stored:
    """What intake did with a delivery, and what to answer (the same for every retry)."""

    inbox_event_id: int
    duplicate: bool
    inquiry_id: int | None
    reference: str | None
    opened: bool
    ack_text: str | None
    reply_timestamp: str | None
    reply_nonce: str | None


INTAKE_SQL = (
    "SELECT * FROM govinbox_intake(%(account_id)s, %(platform)s, %(dedupe_key)s, %(sender_id)s,"
    " %(msg_type)s, %(event_type)s, %(sent_at)s, %(payload)s, %(content)s, %(platform_msg_id)s,"
    " %(channel)s, %(now)s, %(open_window)s, %(quiet)s, %(ack_template)s, %(reply_timestamp)s,"
    " %(reply_nonce)s, %(grants)s, %(rating_window)s, %(media_id)s)"
)


def ack_template(account: WebhookAccount, answer_base_url: str) -> str | None:
    """The acknowledgement intake fills in ({reference}, {code}), or None when it is off. It
    always carries the answer page's query code (查询码) and link: an admin's text without
    {code} gets them appended."""
    if not account.ack_enabled:
        return None
    link = f"{answer_base_url.rstrip('/')}/answer?ref={{reference}}&code={{code}}"
    text = account.ack_text.replace("{link}", link)
    if "{code}" not in account.ack_text and "{link}" not in account.ack_text:
        suffix = CODE_LINE.replace("{link}", link)
        if account.platform is Platform.weibo:
            # Weibo cuts a passive reply at 300 characters (weibo.answer): the admin's text gives
            # way, never the code.
            text = _cut(text, WEIBO_TEXT_LIMIT - _filled(suffix))
        text += suffix
    return text


WEIBO_TEXT_LIMIT = 300


def _filled(template: str) -> int:
    """A template's length once intake has filled it in (references grow past 6 digits)."""
    return len(template.replace("{reference}", "W" * 24).replace("{code}", "0" * 8))


def _cut(template: str, room: int) -> str:
    while template and _filled(template) > room:
        template = template[:-1]
    if template.rfind("{") > template.rfind("}"):  # never half a placeholder
        template = template[: template.rfind("{")]
    return template


async def store(
    connection: Connection,
    account: WebhookAccount,
    delivery: Delivery,
    *,
    now: datetime,
    open_window: timedelta,
    quiet: timedelta,
    seconds: float,
) -> Stored:
    """Store the raw delivery once and thread it into an inquiry; queue its routing job."""
    stored = await _fetch_one(
        connection,
        INTAKE_SQL,
        {
            "account_id": account.id,
            "platform": account.platform.value,
            "dedupe_key": delivery.dedupe_key,
            "sender_id": delivery.sender_id,
            "msg_type": delivery.msg_type,
            "event_type": delivery.event_type,
            "sent_at": delivery.sent_at,
            "payload": delivery.payload,
            "content": delivery.content,
            "platform_msg_id": delivery.platform_msg_id,
            "channel": delivery.channel.value,
            "now": now,
            "open_window": open_window,
            "quiet": quiet,
            "ack_template": ack_template(account, settings().public_base_url),
            "reply_timestamp": delivery.reply_timestamp,
            "reply_nonce": delivery.reply_nonce,
            "grants": Jsonb([{"template_id": t, "status": s} for t, s in delivery.grants])
            if delivery.grants
            else None,
            "rating_window": timedelta(days=settings().rating_window_days),
            "media_id": delivery.media_id,
        },
        Stored,
        seconds=seconds,
    )
    assert stored is not None  # the function returns exactly one row
    return stored
