"""The hostile-input corpus for both webhooks: one case a row, each with the status the README's
answer table documents. `test_hostile.py` posts every case and checks that nothing was stored.

A case builds its request from the peers (wechatpy signs and encrypts; the Weibo peer signs), so
each one is refused for the one thing it gets wrong.
"""

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.webhooks import wechat_crypto
from tests.webhooks import peers
from tests.webhooks.peers import WeChat, Weibo, sign, text_xml, weibo_text

WECHAT = "/webhooks/wechat/hefei-wechat"  # safe mode, acknowledgements on
PLAIN = "/webhooks/wechat/hefei-plain"  # no EncodingAESKey: plain mode
WEIBO = "/webhooks/weibo/hefei-weibo"


@dataclass(frozen=True)
class Request:
    path: str  # with its query string
    body: bytes | Callable[[], object] = b""  # a callable: a streamed body (no Content-Length)
    method: str = "POST"


@dataclass(frozen=True)
class Peers:
    wechat: WeChat
    plain: WeChat
    weibo: Weibo
    now: int  # the clock, in seconds


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    build: Callable[[Peers], Request]
    tags: tuple[str, ...] = field(default=())


def _safe(peers_: Peers, xml: str) -> Request:
    query, body = peers_.wechat.request(xml)
    return Request(f"{WECHAT}?{query}", body)


def _plain(
    peers_: Peers, body: bytes, *, timestamp: str | None = None, nonce: str = "1"
) -> Request:
    stamp = timestamp if timestamp is not None else str(peers_.now)
    query = urlencode(
        {"signature": sign(peers.TOKEN, stamp, nonce), "timestamp": stamp, "nonce": nonce}
    )
    return Request(f"{PLAIN}?{query}", body)


def _encrypted(peers_: Peers, encrypted: str, *, resign: bool = True, nonce: str = "7") -> Request:
    """A safe-mode request around `encrypted`, its msg_signature recomputed (or kept stale)."""
    stamp = str(peers_.now)
    signed_over = encrypted if resign else "something else"
    query = urlencode(
        {
            "signature": sign(peers.TOKEN, stamp, nonce),
            "timestamp": stamp,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": sign(peers.TOKEN, stamp, nonce, signed_over),
        }
    )
    body = (
        f"<xml><ToUserName><![CDATA[{peers.ORIGINAL_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()
    return Request(f"{WECHAT}?{query}", body)


def _good_encrypt(peers_: Peers) -> str:
    envelope = peers_.wechat.crypto.encrypt_message(text_xml("你好", create_time=1), "7", "1")
    start = envelope.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    return envelope[start : envelope.index("]]>", start)]


def _bad_padding(peers_: Peers) -> str:
    """Whole AES blocks whose last byte claims 0 bytes of PKCS#7 padding."""
    key = wechat_crypto.aes_key(peers.AES_KEY)
    plain = os.urandom(16) + b"\x00\x00\x00\x05hello" + peers.APP_ID.encode()
    plain += b"\x00" * (-len(plain) % 32 or 32)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _elsewhere(path: str, request: Request) -> Request:
    """The same signed request, sent to another path."""
    return Request(f"{path}?{request.path.partition('?')[2]}", request.body)


def _weibo(peers_: Peers, message: object, *, timestamp: str | None = None) -> Request:
    stamp = timestamp if timestamp is not None else str(peers_.now * 1000)
    query = urlencode(
        {"signature": sign(peers.WEIBO_SECRET, stamp, "3"), "timestamp": stamp, "nonce": "3"}
    )
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return Request(f"{WEIBO}?{query}", body)


def _oversize_stream() -> object:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(80):
            yield b"<xml>" + b"x" * 1024

    return chunks()


XXE = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    f"<xml><ToUserName>{peers.ORIGINAL_ID}</ToUserName><FromUserName>o1</FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&xxe;</Content></xml>"
)
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;">]>'
    "<xml><Content>&d;</Content></xml>"
)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]>'
    "<xml><Content>x</Content></xml>"
)
NUL_REFERENCE = (
    "<xml><ToUserName>gh_00000000plain</ToUserName><FromUserName>o1</FromUserName>"
    "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>a&#0;b</Content></xml>"
)
LATIN1 = '<?xml version="1.0" encoding="ISO-8859-1"?>' + text_xml(
    "社保怎么补缴", create_time=1
).replace(peers.ORIGINAL_ID, "gh_00000000plain")


CASES = [
    # Where it is sent.
    Case("wechat: NUL in the account code", 404, lambda p: Request("/webhooks/wechat/%00?a=1")),
    Case(
        "wechat: unknown account",
        404,
        lambda p: _elsewhere(
            "/webhooks/wechat/nobody-here", _safe(p, text_xml("x", create_time=1))
        ),
    ),
    Case("weibo: NUL in the account code", 404, lambda p: Request("/webhooks/weibo/a%00b?a=1")),
    # What XML may not carry.
    Case("wechat: DTD with an external entity (XXE)", 400, lambda p: _plain(p, XXE.encode())),
    Case("wechat: billion laughs", 400, lambda p: _plain(p, LAUGHS.encode())),
    Case("wechat: parameter entities", 400, lambda p: _plain(p, PARAMETER_ENTITY.encode())),
    Case("wechat: a declared encoding other than UTF-8", 400, lambda p: _plain(p, LATIN1.encode())),
    Case("wechat: a NUL character reference", 400, lambda p: _plain(p, NUL_REFERENCE.encode())),
    Case(
        "wechat: a NUL byte",
        400,
        lambda p: _plain(p, NUL_REFERENCE.replace("&#0;", "\x00").encode()),
    ),
    Case(
        "wechat: invalid UTF-8", 400, lambda p: _plain(p, b"<xml><Content>\xff\xfe</Content></xml>")
    ),
    Case("wechat: empty body", 400, lambda p: _plain(p, b"")),
    Case("wechat: not XML", 400, lambda p: _plain(p, b'{"json": true}')),
    # Size.
    Case(
        "wechat: oversize, Content-Length says so",
        413,
        lambda p: _plain(p, b"<xml>" + b"x" * 70_000 + b"</xml>"),
    ),
    Case(
        "wechat: oversize, streamed without Content-Length",
        413,
        lambda p: Request(_plain(p, b"").path, _oversize_stream),
    ),
    # Signatures and time.
    Case(
        "wechat: bad signature",
        403,
        lambda p: Request(
            _plain(p, b"<xml/>").path.replace("signature=", "signature=0"), b"<xml/>"
        ),
    ),
    Case(
        "wechat: stale timestamp", 403, lambda p: _plain(p, b"<xml/>", timestamp=str(p.now - 3600))
    ),
    Case(
        "wechat: future timestamp", 403, lambda p: _plain(p, b"<xml/>", timestamp=str(p.now + 3600))
    ),
    Case(
        "wechat: a signed timestamp that is not a number (²)",
        400,
        lambda p: _plain(p, b"<xml/>", timestamp="²"),
    ),
    Case(
        "wechat: a signed timestamp of 5,000 digits",
        400,
        lambda p: _plain(p, b"<xml/>", timestamp="1" * 5000),
    ),
    Case(
        "wechat: a signed nonce over 64 characters",
        400,
        lambda p: _encrypted(p, _good_encrypt(p), nonce="9" * 65),
    ),
    # Ciphertext.
    Case(
        "wechat: truncated ciphertext, signature recomputed",
        400,
        lambda p: _encrypted(p, _good_encrypt(p)[:-8]),
    ),
    Case(
        "wechat: garbage ciphertext, signature recomputed",
        400,
        lambda p: _encrypted(p, base64.b64encode(os.urandom(48)).decode()),
    ),
    Case("wechat: not base64", 400, lambda p: _encrypted(p, "!!!not-base64!!!")),
    Case("wechat: bad PKCS#7 padding", 400, lambda p: _encrypted(p, _bad_padding(p))),
    Case(
        "wechat: tampered Encrypt, signature kept",
        403,
        lambda p: _encrypted(p, "A" + _good_encrypt(p)[1:], resign=False),
    ),
    Case(
        "wechat: tampered Encrypt, signature recomputed",
        400,
        lambda p: _encrypted(p, "A" * 8 + _good_encrypt(p)[8:]),
    ),
    Case(
        "wechat: another account's AppID inside",
        403,
        lambda p: _encrypted(
            p,
            _good_encrypt(
                Peers(
                    WeChat(WECHAT, p.wechat.clock, app_id="wx0000000000000000"),
                    p.plain,
                    p.weibo,
                    p.now,
                )
            ),
        ),
    ),
    Case(
        "wechat: addressed to another account",
        403,
        lambda p: _safe(
            p, text_xml("x", create_time=1).replace(peers.ORIGINAL_ID, "gh_000000000000")
        ),
    ),
    Case(
        "wechat: plaintext to an encrypted account",
        403,
        lambda p: _elsewhere(WECHAT, _plain(p, text_xml("x", create_time=1).encode())),
    ),
    # Weibo.
    Case(
        "weibo: bad signature",
        403,
        lambda p: Request(
            _weibo(p, weibo_text("x")).path.replace("signature=", "signature=0"), b"{}"
        ),
    ),
    Case(
        "weibo: a signed timestamp that is not a number (²)",
        400,
        lambda p: _weibo(p, weibo_text("x"), timestamp="²"),
    ),
    Case("weibo: invalid UTF-8", 400, lambda p: _weibo(p, b'{"text": "\xff"}')),
    Case("weibo: empty body", 400, lambda p: _weibo(p, b"")),
    Case("weibo: a JSON array", 400, lambda p: _weibo(p, [weibo_text("x")])),
    Case("weibo: type null", 400, lambda p: _weibo(p, weibo_text("x") | {"type": None})),
    Case("weibo: a numeric text", 400, lambda p: _weibo(p, weibo_text("x") | {"text": 12345})),
    Case("weibo: NUL in the text", 400, lambda p: _weibo(p, weibo_text("a\u0000b"))),
    Case(
        "weibo: created_at in year 9999 at -2359",
        400,
        lambda p: _weibo(p, weibo_text("x", created_at="Fri Dec 31 23:59:59 -2359 9999")),
    ),
    Case(
        "weibo: created_at in year 0001",
        400,
        lambda p: _weibo(p, weibo_text("x", created_at="Mon Jan 01 00:00:00 +0800 0001")),
    ),
    Case(
        "weibo: created_at padded with spaces",
        400,
        lambda p: _weibo(p, weibo_text("x", created_at="Tue Nov 24  10:00:00  +0800 2026")),
    ),
    Case(
        "weibo: created_at a week ago",
        400,
        lambda p: _weibo(p, weibo_text("x", created_at="Tue Nov 17 10:00:00 +0800 2026")),
    ),
    Case(
        "weibo: another account's receiver_id",
        403,
        lambda p: _weibo(p, weibo_text("x") | {"receiver_id": 1}),
    ),
]
