"""WeChat Official Account callback signatures, safe-mode crypto and hardened XML parsing.

See the protocol brief (wechat-weibo-protocol.md) sections 1, 2 and 6. Pure and synchronous.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

# The Tencent sample pads to 32 bytes, not AES's 16 (protocol §2.3).
_PAD_BLOCK = 32
_RANDOM_LEN = 16
_ENCODING_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
# WeChat's deepest payload (SendPicsInfo.PicList.item.PicMd5Sum) nests 4 levels under <xml>.
_MAX_DEPTH = 8
# XML 1.0 forbids these even inside CDATA; a single one makes the whole reply malformed.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class WeChatCryptoError(Exception):
    """A callback that fails verification or decryption."""


class BadSignature(WeChatCryptoError):
    """`signature` or `msg_signature` does not match (Tencent -40001)."""


class BadAppId(WeChatCryptoError):
    """Decryption worked but the trailing AppID is not ours (Tencent -40005)."""


class Undecryptable(WeChatCryptoError):
    """Not base64, not whole AES blocks, bad padding or length, or not UTF-8."""


class BadKey(WeChatCryptoError):
    """The EncodingAESKey is not 43 characters of [A-Za-z0-9] (Tencent -40004)."""


class XmlRejected(Exception):
    """A body we refuse to read: too large, a DTD or entities, malformed, or not `<xml>`."""


def signature(*parts: str) -> str:
    """SHA-1 hex of the parts sorted byte-wise and concatenated, as WeChat signs callbacks."""
    # surrogatepass: query strings are untrusted and this must never raise.
    encoded = sorted(part.encode("utf-8", "surrogatepass") for part in parts)
    return hashlib.sha1(b"".join(encoded)).hexdigest()  # noqa: S324 - the protocol mandates SHA-1


def signatures_match(expected: str, given: str) -> bool:
    """Compare signatures in constant time; any odd input simply does not match."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


def aes_key(encoding_aes_key: str) -> bytes:
    """Decode an EncodingAESKey into the 32-byte AES key."""
    if not _ENCODING_AES_KEY.fullmatch(encoding_aes_key):
        raise BadKey("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
    return base64.b64decode(encoding_aes_key + "=")


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    if len(key) != 32:
        raise BadKey("AES key must be 32 bytes")
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def decrypt(encrypted_b64: str, *, key: bytes, app_id: str) -> bytes:
    """Decrypt an `Encrypt` value and return the UTF-8 XML message inside.

    CBC without a MAC: check `msg_signature` first, or the distinct errors are a padding oracle.
    """
    try:
        ciphertext = base64.b64decode(encrypted_b64, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise Undecryptable("not base64") from exc
    if not ciphertext or len(ciphertext) % 16:
        raise Undecryptable("not whole AES blocks")
    decryptor = _cipher(key).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    # Tencent's sample ignores a bad pad; we refuse it so garbage never reaches msg_len.
    if not 1 <= pad <= _PAD_BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise Undecryptable("bad PKCS#7 padding")
    plain = padded[:-pad]
    if len(plain) < _RANDOM_LEN + 4:
        raise Undecryptable("too short")
    msg_len = int.from_bytes(plain[_RANDOM_LEN : _RANDOM_LEN + 4], "big")
    start = _RANDOM_LEN + 4
    if msg_len > len(plain) - start:
        raise Undecryptable("msg_len out of range")
    message, tail = plain[start : start + msg_len], plain[start + msg_len :]
    if not hmac.compare_digest(tail, app_id.encode()):
        raise BadAppId("AppID does not match")
    try:
        message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Undecryptable("message is not UTF-8") from exc
    return message


def encrypt(message: bytes, *, key: bytes, app_id: str, random_prefix: bytes | None = None) -> str:
    """Encrypt a message as an `Encrypt` value; pin `random_prefix` only in tests."""
    prefix = os.urandom(_RANDOM_LEN) if random_prefix is None else random_prefix
    if len(prefix) != _RANDOM_LEN:
        raise ValueError("random_prefix must be 16 bytes")
    # msg_len counts bytes, not characters (protocol §2.3, breaks on Chinese otherwise).
    plain = prefix + len(message).to_bytes(4, "big") + message + app_id.encode()
    pad = _PAD_BLOCK - len(plain) % _PAD_BLOCK
    encryptor = _cipher(key).encryptor()
    ciphertext = encryptor.update(plain + bytes([pad]) * pad) + encryptor.finalize()
    return base64.b64encode(ciphertext).decode("ascii")


def decrypt_any(encrypted_b64: str, *, keys: Sequence[bytes], app_id: str) -> tuple[bytes, bytes]:
    """Decrypt with the current key, then the previous one; return (message, key that worked).

    WeChat's FAQ: keep the current and previous EncodingAESKey, and encrypt the reply with
    whichever key decrypted the request (protocol §2.2).
    """
    first_error: WeChatCryptoError | None = None
    app_id_error: BadAppId | None = None
    for key in keys:
        try:
            return decrypt(encrypted_b64, key=key, app_id=app_id), key
        except BadAppId as exc:
            # Decryption itself worked, so this says more than another key's garbage.
            app_id_error = app_id_error or exc
        except WeChatCryptoError as exc:
            first_error = first_error or exc
    raise app_id_error or first_error or BadKey("no AES key configured")


def _cdata(value: str) -> str:
    # A literal "]]>" would end the section early; wechatpy does not split it (protocol §3.4).
    value = _NOT_XML_CHAR.sub("", value)
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def encrypted_reply(
    message: bytes,
    *,
    key: bytes,
    app_id: str,
    token: str,
    timestamp: str,
    nonce: str,
    random_prefix: bytes | None = None,
) -> bytes:
    """Wrap a passive reply in the safe-mode envelope (protocol §2.5)."""
    encrypted = encrypt(message, key=key, app_id=app_id, random_prefix=random_prefix)
    msg_signature = signature(token, timestamp, nonce, encrypted)
    return (
        "<xml>\n"
        f"<Encrypt>{_cdata(encrypted)}</Encrypt>\n"
        f"<MsgSignature>{_cdata(msg_signature)}</MsgSignature>\n"
        f"<TimeStamp>{escape(timestamp)}</TimeStamp>\n"
        f"<Nonce>{_cdata(nonce)}</Nonce>\n"
        "</xml>"
    ).encode()


_DECLARED_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")


def parse_xml(body: bytes, *, max_bytes: int) -> dict[str, str]:
    """Parse a callback body into {tag: text}, refusing DTDs, entities and oversize bodies.

    Text is kept exactly (no stripping; XML itself turns CR LF into LF). Nested elements are
    flattened to dotted paths of their leaves ("ScanCodeInfo.ScanResult"); when a path repeats
    (PicList items) the first one wins, so keep the raw body if you need them all.
    """
    if len(body) > max_bytes:
        raise XmlRejected("body too large")
    declared = _DECLARED_ENCODING.match(body)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        # WeChat sends UTF-8; honouring another declaration stores Chinese as mojibake.
        raise XmlRejected("the XML declares an encoding other than UTF-8")
    try:
        root: Element = SafeElementTree.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise XmlRejected(f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError) as exc:
        raise XmlRejected("malformed XML") from exc
    if root.tag != "xml":
        raise XmlRejected("root element is not <xml>")
    fields: dict[str, str] = {}
    stack = [(child, child.tag, 1) for child in reversed(root)]
    while stack:
        element, path, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise XmlRejected("nested too deep")
        if len(element):
            stack.extend((c, f"{path}.{c.tag}", depth + 1) for c in reversed(element))
        else:
            fields.setdefault(path, element.text or "")
    return fields


def text_reply_xml(*, to_user: str, from_user: str, create_time: int, content: str) -> bytes:
    """Render a passive text reply (protocol §1.6); to_user is the citizen's OpenID."""
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time:d}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content>"
        "</xml>"
    ).encode()
