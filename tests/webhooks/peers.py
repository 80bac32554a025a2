"""The platforms as tests see them: wechatpy signs and encrypts; we only build the XML/JSON."""

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode

import httpx
import xmltodict
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

TOKEN = "spamtest"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PREVIOUS_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
APP_ID = "wx2c2769f8efd9abc2"
ORIGINAL_ID = "gh_10f6c3c3ac5a"
CITIZEN = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
WEIBO_SECRET = "xyz123xyz"
WEIBO_UID = "1902538057"

_msg_ids = itertools.count(6054768590064713728)


class HasNow(Protocol):
    @property
    def now(self) -> datetime: ...


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def text_xml(
    content: str, *, sender: str = CITIZEN, msg_id: int | None = None, create_time: int
) -> str:
    return message_xml(
        "text", sender=sender, msg_id=msg_id, create_time=create_time, Content=content
    )


def message_xml(
    msg_type: str,
    *,
    sender: str = CITIZEN,
    msg_id: int | None = None,
    create_time: int,
    **fields: str,
) -> str:
    body = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    ident = "" if msg_type == "event" else f"<MsgId>{msg_id or next(_msg_ids)}</MsgId>"
    return (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName><CreateTime>{create_time}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>{body}{ident}</xml>"
    )


@dataclass
class WeChat:
    """A WeChat server posting to one account, in plain, compatible or safe mode."""

    path: str
    clock: HasNow
    mode: str = "safe"
    token: str = TOKEN
    aes_key: str = AES_KEY
    app_id: str = APP_ID
    nonces: "itertools.count[int]" = field(default_factory=lambda: itertools.count(461056294))

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.app_id)

    def request(self, xml: str, *, nonce: str | None = None) -> tuple[str, bytes]:
        """The query string and body WeChat would send for `xml`."""
        timestamp, nonce = str(int(self.clock.now.timestamp())), nonce or str(next(self.nonces))
        query = {
            "signature": sign(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": CITIZEN,
        }
        if self.mode == "plain":
            return urlencode(query), xml.encode()
        envelope = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, timestamp))["xml"]
        encrypted = envelope["Encrypt"]
        query |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
        if self.mode == "compatible":
            body = xml.replace("</xml>", f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
        else:
            body = f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        return urlencode(query), body.encode()

    async def post(
        self, client: httpx.AsyncClient, xml: str, *, nonce: str | None = None
    ) -> httpx.Response:
        query, body = self.request(xml, nonce=nonce)
        return await client.post(
            f"{self.path}?{query}", content=body, headers={"Content-Type": "text/xml"}
        )

    def read_reply(self, body: bytes) -> str:
        """The passive reply's plain XML, decrypted by wechatpy when it came encrypted."""
        if self.mode == "plain" or b"<Encrypt>" not in body:
            return body.decode()
        envelope = xmltodict.parse(body)["xml"]
        return str(
            self.crypto.decrypt_message(
                body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"]
            )
        )


@dataclass
class Weibo:
    path: str
    clock: HasNow
    secret: str = WEIBO_SECRET
    nonces: "itertools.count[int]" = field(default_factory=lambda: itertools.count(57155157))

    def query(self) -> str:
        timestamp, nonce = str(int(self.clock.now.timestamp() * 1000)), str(next(self.nonces))
        return urlencode(
            {
                "signature": sign(self.secret, timestamp, nonce),
                "timestamp": timestamp,
                "nonce": nonce,
            }
        )

    async def post(self, client: httpx.AsyncClient, message: dict[str, object]) -> httpx.Response:
        body = json.dumps(message, ensure_ascii=False).encode()
        return await client.post(
            f"{self.path}?{self.query()}",
            content=body,
            headers={"Content-Type": "application/json"},
        )


def weibo_text(
    text: str,
    *,
    sender: str = "2489518277",
    created_at: str = "Tue Nov 24 10:00:00 +0800 2026",
    kind: str = "text",
    data: dict[str, object] | None = None,
) -> dict[str, object]:
    return {
        "type": kind,
        "receiver_id": int(WEIBO_UID),
        "sender_id": int(sender),
        "created_at": created_at,
        "text": text,
        "data": data or {},
    }


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
