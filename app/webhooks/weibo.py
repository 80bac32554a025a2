"""Weibo fan-service (粉丝服务平台) callbacks: signature, JSON messages, passive replies.

Protocol brief §5. Timestamps are in milliseconds; the app secret signs; no body encryption.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from app.webhooks import wechat_crypto as crypto
from app.webhooks.service import WEIBO_TEXT_LIMIT, Delivery, Rejected, Stored, WebhookAccount
from app.webhooks.wechat import NONCE

_CREATED_AT = "%a %b %d %H:%M:%S %z %Y"  # "Mon Jul 16 18:09:20 +0800 2012"
_MILLIS = re.compile(r"[0-9]{1,13}")
_FOLLOW_EVENTS = {"follow": "subscribe", "unfollow": "unsubscribe"}


def _check_signature(
    account: WebhookAccount, query: Mapping[str, str], *, now: datetime, tolerance: int
) -> None:
    if not account.weibo_app_secret:
        raise Rejected(403, "not_configured", "the account has no Weibo app secret configured")
    values = [query.get(name, "") for name in ("signature", "timestamp", "nonce")]
    if not all(values):
        raise Rejected(
            400, "missing_parameters", "missing query parameters: signature, timestamp, nonce"
        )
    signature, timestamp, nonce = values
    # Same scheme as WeChat's, with the app secret in place of the token.
    if not crypto.signatures_match(
        crypto.signature(account.weibo_app_secret, timestamp, nonce), signature
    ):
        raise Rejected(403, "bad_signature", "signature does not match")
    if not (_MILLIS.fullmatch(timestamp) and NONCE.fullmatch(nonce)):
        raise Rejected(400, "bad_parameters", "timestamp or nonce malformed")
    if abs(now.timestamp() - int(timestamp) / 1000) > tolerance:
        raise Rejected(403, "stale_timestamp", "timestamp outside the accepted window")


def verify_url(
    account: WebhookAccount, query: Mapping[str, str], *, now: datetime, tolerance: int
) -> str:
    """URL verification (GET): the echostr to echo."""
    _check_signature(account, query, now=now, tolerance=tolerance)
    echostr = query.get("echostr", "")
    if not echostr:
        raise Rejected(400, "missing_parameters", "missing query parameter: echostr")
    return echostr


def _content(kind: str, text: str, data: Mapping[str, Any]) -> str | None:
    match kind:
        case "text":
            return text
        case "position":
            return (
                f"[位置] {text} ({data.get('latitude', '')}, {data.get('longitude', '')})".replace(
                    "  ", " "
                )
            )
        case "voice":
            return "[语音]"
        case "image":
            return "[图片]"
    return None  # events, and types Weibo may add: stored and ignored, as the platform asks


_UID = re.compile(r"[0-9]{1,20}")
# A picture or voice's file id: `tovfid` is the account's copy (what its token downloads through
# mss/msget), `vfid` the sender's; a number, sent as a number or a string.
_MEDIA = frozenset({"image", "voice"})
_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")
_SUBTYPE = re.compile(r"[A-Za-z0-9_]{0,64}")


def _storable(value: str) -> bool:
    """PostgreSQL text holds no NUL, and UTF-8 no lone surrogates (JSON can escape both)."""
    return "\x00" not in value and value.encode("utf-8", "replace").decode("utf-8") == value


def _uid(value: object) -> str:
    """A Weibo uid as text: Weibo writes them as numbers or strings; anything else is no uid."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return ""
    return str(value)


def _sent_at(created: object, *, now: datetime, window: timedelta) -> datetime:
    """created_at, exactly in Weibo's form and near now: a year 9999 or 0001 date could be stored
    but never read back, and its jobs would fail forever."""
    if not isinstance(created, str):
        raise Rejected(400, "bad_json", "created_at is not in Weibo's format")
    try:
        sent_at = datetime.strptime(created, _CREATED_AT)
    except ValueError as exc:
        raise Rejected(400, "bad_json", "created_at is not in Weibo's format") from exc
    if sent_at.strftime(_CREATED_AT) != created:  # strptime forgives spaces; the key would not
        raise Rejected(400, "bad_json", "created_at is not in Weibo's format")
    if abs(sent_at - now) > window:
        raise Rejected(400, "bad_json", "created_at is too far from now")
    return sent_at


def read(
    account: WebhookAccount,
    query: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: int,
    window: timedelta,
) -> Delivery:
    """Verify and normalise a message POST; raise Rejected with the answer's status."""
    _check_signature(account, query, now=now, tolerance=tolerance)
    try:
        payload = body.decode("utf-8")
        message = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Rejected(400, "bad_json", "the body is not UTF-8 JSON") from exc
    if not isinstance(message, dict):
        raise Rejected(400, "bad_json", "the body is not a JSON object")
    kind, created = message.get("type"), message.get("created_at")
    sender, receiver = _uid(message.get("sender_id")), _uid(message.get("receiver_id"))
    raw_data, raw_text = message.get("data"), message.get("text", "")
    if not (isinstance(kind, str) and _NAME.fullmatch(kind) and _UID.fullmatch(sender)):
        raise Rejected(400, "bad_json", "a string type and a numeric sender_id are required")
    if not (isinstance(raw_text, str) and isinstance(raw_data, dict | None)):
        # A number where Weibo sends text would open an empty inquiry.
        raise Rejected(400, "bad_json", "text must be a string and data an object")
    data: dict[str, Any] = raw_data or {}
    text: str = raw_text
    if account.weibo_uid and receiver != account.weibo_uid:
        raise Rejected(403, "wrong_account", "receiver_id is not this account")
    sent_at = _sent_at(created, now=now, window=window)
    subtype = str(data.get("subtype", "")) if kind == "event" else None
    content = _content(kind, text, data)
    # A fid that is not a number is left out: the message is kept, without its file.
    media_id = _uid(data.get("tovfid") or data.get("vfid")) if kind in _MEDIA else ""
    if not _UID.fullmatch(media_id):
        media_id = ""
    if (subtype is not None and not _SUBTYPE.fullmatch(subtype)) or not _storable(content or ""):
        raise Rejected(400, "bad_json", "a field holds characters that cannot be stored")
    # Weibo sends no message id; it recommends sender_id + created_at, and two messages can share a
    # second, so the content's hash completes the key.
    digest = hashlib.sha256(
        json.dumps([kind, text, data], ensure_ascii=True, sort_keys=True).encode()
    ).hexdigest()
    return Delivery(
        dedupe_key=f"weibo:{sender}:{created}:{digest}",
        sender_id=sender,
        msg_type=kind,
        event_type=_FOLLOW_EVENTS.get(subtype, subtype) if subtype is not None else None,
        sent_at=sent_at,
        payload=payload,
        content=content,
        media_id=media_id or None,
    )


def answer(account: WebhookAccount, delivery: Delivery, stored: Stored) -> bytes:
    """An empty body (stops retries), or the passive text acknowledgement."""
    if stored.ack_text is None:
        return b""
    # The passive reply's data is URL-encoded JSON (§5); text must stay under 300 characters.
    text = stored.ack_text[:WEIBO_TEXT_LIMIT]
    data = quote(json.dumps({"text": text}, ensure_ascii=False), safe="")
    reply = {
        "result": True,
        "sender_id": account.weibo_uid or "",
        "receiver_id": delivery.sender_id,
        "type": "text",
        "data": data,
    }
    return json.dumps(reply, ensure_ascii=False).encode()
