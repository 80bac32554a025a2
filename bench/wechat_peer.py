"""The WeChat side of bench/intake.py: citizens' messages, encrypted and signed in safe mode.

Uses the app's own crypto, which tests/webhooks/test_wechat_crypto.py checks against wechatpy.
"""

import itertools
import secrets
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from app.webhooks import wechat_crypto as crypto

CONTENT = "你好，我家小区门口的路灯坏了一个星期，晚上很黑，请问应该找哪个部门修？"
_citizens = itertools.count(1)


def _alnum(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


@dataclass(frozen=True)
class BenchAccount:
    code: str
    token: str
    encoding_aes_key: str
    app_id: str
    original_id: str
    id: int = 0  # known once the account exists

    @classmethod
    def random(cls, code: str) -> "BenchAccount":
        """Fresh secrets and identifiers, in the formats the admin API accepts."""
        return cls(code, _alnum(32), _alnum(43), "wx" + _alnum(16), "gh_" + _alnum(12))


@dataclass(frozen=True)
class Delivery:
    """One citizen's first message, encrypted once; signed again before each sending."""

    sender: str
    encrypted: str
    body: bytes


def message_xml(account: BenchAccount, sender: str, msg_id: int) -> str:
    """A citizen's text message as WeChat writes it before encrypting."""
    return (
        f"<xml><ToUserName><![CDATA[{account.original_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{CONTENT}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def deliveries(account: BenchAccount, count: int) -> list[Delivery]:
    """`count` text messages, each from a new citizen with its own MsgId, encrypted."""
    key, made = crypto.aes_key(account.encoding_aes_key), []
    for n in itertools.islice(_citizens, count):
        sender = f"oBench{n:022d}"  # 28 characters, like an OpenID
        xml = message_xml(account, sender, 24_000_000_000_000_000 + n)
        encrypted = crypto.encrypt(xml.encode(), key=key, app_id=account.app_id)
        body = (
            f"<xml><ToUserName><![CDATA[{account.original_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        ).encode()
        made.append(Delivery(sender, encrypted, body))
    return made


def signed(account: BenchAccount, batch: Sequence[Delivery]) -> list[tuple[str, bytes]]:
    """(path with query, body) as WeChat sends them now: the server refuses stale timestamps."""
    timestamp, requests = str(int(time.time())), []
    for delivery in batch:
        nonce = str(secrets.randbelow(10**9))
        query = {
            "signature": crypto.signature(account.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": delivery.sender,
            "encrypt_type": "aes",
            "msg_signature": crypto.signature(account.token, timestamp, nonce, delivery.encrypted),
        }
        requests.append((f"/webhooks/wechat/{account.code}?{urlencode(query)}", delivery.body))
    return requests
