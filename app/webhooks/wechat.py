"""WeChat Official Account callbacks: verify, decrypt, normalise, and answer byte-stable replies.

Protocol brief (shared/reference/wechat-weibo-protocol.md) §1–2: plain, compatible and safe modes.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from defusedxml import ElementTree as SafeElementTree

from app.webhooks import wechat_crypto as crypto
from app.webhooks.service import Delivery, Rejected, Stored, WebhookAccount

SUCCESS = b"success"  # WeChat: "直接回复success" stops retries; no passive reply


@dataclass(frozen=True)
class Envelope:
    """How the request came, so the answer goes back the same way."""

    account_id_in_payload: str  # ToUserName: the account's gh_ id
    key: bytes | None  # the AES key that decrypted it; None in plain mode


def _required(query: Mapping[str, str], *names: str) -> list[str]:
    values = [query.get(name, "") for name in names]
    if not all(values):
        raise Rejected(400, "missing_parameters", f"missing query parameters: {', '.join(names)}")
    return values


def _check_signature(
    account: WebhookAccount, query: Mapping[str, str], *, now: datetime, tolerance: int
) -> tuple[str, str]:
    if not account.wechat_token:
        raise Rejected(403, "not_configured", "the account has no WeChat token configured")
    signature, timestamp, nonce = _required(query, "signature", "timestamp", "nonce")
    if not crypto.signatures_match(
        crypto.signature(account.wechat_token, timestamp, nonce), signature
    ):
        raise Rejected(403, "bad_signature", "signature does not match")
    if not (_EPOCH.fullmatch(timestamp) and NONCE.fullmatch(nonce)):
        # Signed, yet not what WeChat sends ("²" passes str.isdigit; the nonce is stored).
        raise Rejected(400, "bad_parameters", "timestamp or nonce malformed")
    if abs(now.timestamp() - int(timestamp)) > tolerance:
        raise Rejected(403, "stale_timestamp", "timestamp outside the accepted window")
    return timestamp, nonce


def verify_url(
    account: WebhookAccount, query: Mapping[str, str], *, now: datetime, tolerance: int
) -> str:
    """URL verification (GET): the echostr to echo, after the signature checks out."""
    _check_signature(account, query, now=now, tolerance=tolerance)
    (echostr,) = _required(query, "echostr")
    return echostr


def _keys(account: WebhookAccount) -> list[bytes]:
    try:
        return [
            crypto.aes_key(key)
            for key in (account.wechat_encoding_aes_key, account.wechat_previous_encoding_aes_key)
            if key
        ]
    except crypto.BadKey as exc:
        raise Rejected(400, "not_configured", "the account's EncodingAESKey is invalid") from exc


def read(
    account: WebhookAccount,
    query: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    tolerance: int,
    max_bytes: int,
) -> tuple[Delivery, Envelope]:
    """Verify, decrypt and normalise a message POST; Rejected carries the answer's status."""
    timestamp, nonce = _check_signature(account, query, now=now, tolerance=tolerance)
    encrypted_mode = query.get("encrypt_type", "raw") == "aes"
    if account.wechat_encoding_aes_key and not encrypted_mode:
        # In plain mode the signature covers no part of the body: an account set up for
        # compatible or safe mode must not let a leaked query string carry a forged message.
        raise Rejected(403, "plaintext_refused", "this account accepts encrypted messages only")
    if not _is_utf8(body):
        raise Rejected(400, "bad_xml", "the body is not UTF-8")
    try:
        outer = crypto.parse_xml(body, max_bytes=max_bytes)
    except crypto.XmlRejected as exc:
        raise Rejected(400, "bad_xml", str(exc)) from exc
    key: bytes | None = None
    fields, xml = outer, body
    if encrypted_mode:
        (msg_signature,) = _required(query, "msg_signature")
        encrypted = outer.get("Encrypt", "")
        if not encrypted:
            raise Rejected(400, "bad_xml", "no Encrypt element")
        expected = crypto.signature(account.wechat_token or "", timestamp, nonce, encrypted)
        if not crypto.signatures_match(expected, msg_signature):
            raise Rejected(403, "bad_signature", "msg_signature does not match")
        keys = _keys(account)
        if not keys or not account.wechat_app_id:
            raise Rejected(400, "not_configured", "the account has no EncodingAESKey or AppID")
        try:
            # decrypt() refuses a message that is not UTF-8.
            xml, key = crypto.decrypt_any(encrypted, keys=keys, app_id=account.wechat_app_id)
            fields = crypto.parse_xml(xml, max_bytes=max_bytes)
        except crypto.BadAppId as exc:
            raise Rejected(403, "wrong_app_id", "the AppID inside the message is not ours") from exc
        except (crypto.WeChatCryptoError, crypto.XmlRejected) as exc:
            raise Rejected(400, "undecryptable", str(exc)) from exc
    to_user = fields.get("ToUserName", "")
    if account.wechat_original_id and to_user != account.wechat_original_id:
        raise Rejected(403, "wrong_account", "ToUserName is not this account")
    delivery = replace(
        _delivery(fields, xml.decode()), reply_timestamp=timestamp, reply_nonce=nonce
    )
    return delivery, Envelope(to_user, key)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# What the columns hold and the platform sends; anything else is refused, not truncated.
_SENDER = re.compile(r"[A-Za-z0-9_-]{1,128}")
_NAME = re.compile(r"[A-Za-z0-9_]{1,32}")
_EVENT = re.compile(r"[A-Za-z0-9_]{1,64}")
_EPOCH = re.compile(r"[0-9]{1,10}")
_MSG_ID = re.compile(r"[0-9]{1,20}")
NONCE = re.compile(r"[A-Za-z0-9]{1,64}")  # what inbox_event.reply_nonce holds


def _content(fields: Mapping[str, str], msg_type: str) -> str | None:
    """The message as text departments read and routing matches; None if nothing was asked."""
    match msg_type:
        case "text":
            return fields.get("Content", "")
        case "image":
            return f"[图片] {fields.get('PicUrl', '')}".strip()
        case "voice":
            # Recognition is WeChat's speech-to-text, present when the account enabled it.
            return fields.get("Recognition") or "[语音]"
        case "video" | "shortvideo":
            return "[视频]"
        case "location":
            return (
                f"[位置] {fields.get('Label', '')} "
                f"({fields.get('Location_X', '')}, {fields.get('Location_Y', '')})"
            )
        case "link":
            parts = (fields.get("Title", ""), fields.get("Description", ""), fields.get("Url", ""))
            return "[链接] " + " ".join(part for part in parts if part)
    # A type WeChat added later (e.g. miniprogrampage): the citizen still sent something.
    return f"[{msg_type}]"


# 订阅通知 decisions (docs/platforms.md): the popup's answer, or a change in the citizen's settings.
_GRANT_EVENTS = {
    "subscribe_msg_popup_event": "SubscribeMsgPopupEvent",
    "subscribe_msg_change_event": "SubscribeMsgChangeEvent",
}
_TEMPLATE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MEDIA = frozenset({"image", "voice", "video", "shortvideo"})  # fetched through media/get
_MEDIA_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _grants(xml: str) -> tuple[tuple[str, str], ...]:
    """Each <List> of the event (parse_xml keeps only the first of repeated paths; the body was
    already parsed safely, so this second look is over checked XML): (template id, accept |
    reject). Anything else (ban, a malformed id) is skipped."""
    root = SafeElementTree.fromstring(xml, forbid_dtd=True, forbid_entities=True)
    found = []
    for wrapper in _GRANT_EVENTS.values():
        for item in root.iterfind(f"{wrapper}/List"):
            template = (item.findtext("TemplateId") or "").strip()
            status = (item.findtext("SubscribeStatusString") or "").strip()
            if _TEMPLATE_ID.fullmatch(template) and status in ("accept", "reject"):
                found.append((template, status))
    return tuple(found)


def _delivery(fields: Mapping[str, str], xml: str) -> Delivery:
    sender, create_time = fields.get("FromUserName", ""), fields.get("CreateTime", "")
    msg_type = fields.get("MsgType", "")
    if not (
        _SENDER.fullmatch(sender) and _EPOCH.fullmatch(create_time) and _NAME.fullmatch(msg_type)
    ):
        raise Rejected(400, "bad_xml", "FromUserName, CreateTime or MsgType missing or malformed")
    sent_at = datetime.fromtimestamp(int(create_time), UTC)
    if msg_type == "event":
        event = fields.get("Event", "")
        if not _EVENT.fullmatch(event):
            raise Rejected(400, "bad_xml", "Event missing or malformed")
        # WeChat's advice: events by FromUserName + CreateTime (+ Event, as two can share a second).
        grants = _grants(xml) if event in _GRANT_EVENTS else ()
        return Delivery(
            dedupe_key=f"event:{sender}:{create_time}:{event}",
            sender_id=sender,
            msg_type=msg_type,
            event_type=event.lower() if event.lower() in ("subscribe", "unsubscribe") else event,
            sent_at=sent_at,
            payload=xml,
            content=None,
            grants=grants,
        )
    msg_id = fields.get("MsgId", "")
    if msg_id and not _MSG_ID.fullmatch(msg_id):
        raise Rejected(400, "bad_xml", "MsgId malformed")
    # MsgId alone collides across users (WxJava #333), hence FromUserName in the key.
    dedupe = (
        f"msg:{sender}:{msg_id}"
        if msg_id
        else f"msg:{sender}:{create_time}:{hashlib.sha256(xml.encode()).hexdigest()}"
    )
    media_id = fields.get("MediaId", "") if msg_type in _MEDIA else ""
    if media_id and not _MEDIA_ID.fullmatch(media_id):
        raise Rejected(400, "bad_xml", "MediaId malformed")
    return Delivery(
        dedupe_key=dedupe,
        sender_id=sender,
        msg_type=msg_type,
        event_type=None,
        sent_at=sent_at,
        payload=xml,
        content=_content(fields, msg_type),
        platform_msg_id=msg_id or None,
        media_id=media_id or None,
    )


def answer(
    account: WebhookAccount, delivery: Delivery, stored: Stored, envelope: Envelope
) -> bytes:
    """`success`, or the passive acknowledgement; the same bytes for every retry."""
    if stored.ack_text is None or stored.reply_timestamp is None or stored.reply_nonce is None:
        return SUCCESS
    reply = crypto.text_reply_xml(
        to_user=delivery.sender_id,
        from_user=envelope.account_id_in_payload,
        create_time=int(stored.reply_timestamp),
        content=stored.ack_text,
    )
    if envelope.key is None:
        return reply
    # The envelope's random prefix comes from the stored event, not os.urandom, so a retry is
    # answered byte for byte the same; it stays secret because it is keyed by the AES key.
    prefix = hmac.new(envelope.key, f"reply:{stored.inbox_event_id}".encode(), "sha256").digest()
    return crypto.encrypted_reply(
        reply,
        key=envelope.key,
        app_id=account.wechat_app_id or "",
        token=account.wechat_token or "",
        timestamp=stored.reply_timestamp,
        nonce=stored.reply_nonce,
        random_prefix=prefix[:16],
    )
