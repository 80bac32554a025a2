"""WeChat crypto against the verified vectors V1..V5 and wechatpy as an independent peer."""

import base64

import pytest
import wechatpy.crypto
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import deserialize_reply

from app.webhooks.wechat_crypto import (
    BadAppId,
    BadKey,
    BadSignature,
    Undecryptable,
    WeChatCryptoError,
    XmlRejected,
    aes_key,
    decrypt,
    decrypt_any,
    encrypt,
    encrypted_reply,
    parse_xml,
    signature,
    signatures_match,
    text_reply_xml,
)

MAX = 64 * 1024

# V1 and V2: official samples (Sample.py, Sample.cpp); same key and appid.
V1_ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
V1_KEY_HEX = "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051"
V1_APPID = "wx2c2769f8efd9abc2"
V1_BODY = (
    b"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA["
    b"oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType>"
    b"<![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728"
    b"</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+"
    b"LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41"
    b"IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KW"
    b"wMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+"
    b"C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]>"
    b"</Encrypt></xml>"
)
V1_PLAIN = (
    b"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA["
    b"oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n"
    b"<MsgId>6054768590064713728</MsgId>\n</xml>"
)
V2_ENCRYPT = (
    "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS8"
    "jSI/WPeKB5VPr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDbOPa"
    "E7ukZBTV2YqyzH+UI2AK+J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It+ZfM"
    "3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtkaKdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjicbP3xd"
    "r15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GTF/XyE8yGzc4="
)
V2_PLAIN = (
    b"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA["
    b"oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1410349438</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n"
    b"<MsgId>6057404712141979648</MsgId>\n</xml>"
)

# V3: WxJava's deterministic encryption, random prefix pinned.
V3_APPID = "wxb11529c136998cb6"
V3_ENCRYPT = (
    "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
)
V3_MSG2 = (
    "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName>"
    "<![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType>"
    "<![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUk"
    "jm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title>"
    "<Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
).encode()
V3_ENCRYPT2 = (
    "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqc"
    "EcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tY"
    "PKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI2"
    "7OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50"
    "qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8"
    "igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMa"
    "BropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)

# V4: wechatpy's own tests/test_crypto.py.
V4_ENCODING_AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
V4_APPID = "wx49f0ab532d5d035a"
V4_ENCRYPT = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTye"
    "DXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolB"
    "ug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZ"
    "lF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTr"
    "b++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0="
)
V4_PLAIN = (
    b"<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<FromUserName><![CDATA["
    b"messense]]></FromUserName>\n<CreateTime>1411525903</CreateTime>\n<MsgType><![CDATA[text]]>"
    b"</MsgType>\n<Content><![CDATA[test]]></Content>\n<MsgId>4363689963896700987</MsgId>\n"
    b"<AgentID>1</AgentID>\n</xml>"
)
V4_REPLY = (
    b"<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    b"<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]>"
    b"</ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
)
V4_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8"
    "GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL"
    "2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDX"
    "afG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpat"
    "F9XiKzHo3"
)

# V5: WX-doc safe-mode example with an all-zero key.
V5_APPID = "wx134c8103faa5a59e"
V5_BODY = (
    b"<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[D7yzvUNAL930rd28"
    b"wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+"
    b"ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0ME"
    b"A4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5Wp"
    b"CDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfU"
    b"fe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==]]>"
    b"</Encrypt></xml>"
)
V5_PLAIN = (
    b"<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA["
    b"o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n"
    b"<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n"
    b"<debug_str><![CDATA[hello world]]></debug_str>\n</xml>"
)
V5_REPLY_ENCRYPT = (
    "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT"
    "9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
)

V1_KEY = aes_key(V1_ENCODING_AES_KEY)
OTHER_KEY = aes_key(V4_ENCODING_AES_KEY)


def raw_encrypt(padded: bytes, key: bytes = V1_KEY) -> str:
    """AES-CBC with no padding of its own, to craft plaintexts our encrypt() would never make."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def frame(message: bytes, *, app_id: str = V1_APPID, msg_len: int | None = None) -> bytes:
    """random(16) + msg_len + msg + appid, unpadded."""
    length = len(message) if msg_len is None else msg_len
    return b"r" * 16 + length.to_bytes(4, "big") + message + app_id.encode()


def pkcs7(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


# Vectors


def test_aes_key_v1() -> None:
    assert aes_key(V1_ENCODING_AES_KEY).hex() == V1_KEY_HEX


def test_v1_signatures_and_decrypt() -> None:
    fields = parse_xml(V1_BODY, max_bytes=MAX)
    assert signature("spamtest", "1409735669", "1320562132") == (
        "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
    )
    msg_signature = signature("spamtest", "1409735669", "1320562132", fields["Encrypt"])
    assert msg_signature == "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    assert decrypt(fields["Encrypt"], key=V1_KEY, app_id=V1_APPID) == V1_PLAIN
    # The decrypted prefix is printable; pinning it reproduces Tencent's ciphertext exactly.
    assert (
        encrypt(V1_PLAIN, key=V1_KEY, app_id=V1_APPID, random_prefix=b"89465c840c5f116f")
        == (fields["Encrypt"])
    )


def test_url_verification_and_plain_post_signatures() -> None:
    assert signature("AAAAA", "1714036504", "1514711492") == (
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    )
    assert signature("AAAAA", "1714037059", "486452656") == (
        "899cf89e464efb63f54ddac96b0a0a235f53aa78"
    )


def test_v2_safe_mode_body() -> None:
    body = (
        b"<xml><ToUserName><![CDATA[toUser]]></ToUserName><Encrypt><![CDATA["
        + V2_ENCRYPT.encode()
        + b"]]></Encrypt></xml>"
    )
    encrypted = parse_xml(body, max_bytes=MAX)["Encrypt"]
    assert encrypted == V2_ENCRYPT
    assert signatures_match(
        signature("spamtest", "1410349438", "298025754", encrypted),
        "003fee52ecc56afb46c00b5c7721be87860ce785",
    )
    assert decrypt(encrypted, key=V1_KEY, app_id=V1_APPID) == V2_PLAIN


def test_v3_encrypt_byte_for_byte() -> None:
    prefix = b"aaaabbbbccccdddd"
    message = "我是中文abcd123".encode()
    assert encrypt(message, key=V1_KEY, app_id=V3_APPID, random_prefix=prefix) == V3_ENCRYPT
    assert encrypt(V3_MSG2, key=V1_KEY, app_id=V3_APPID, random_prefix=prefix) == V3_ENCRYPT2
    assert decrypt(V3_ENCRYPT, key=V1_KEY, app_id=V3_APPID) == message
    assert decrypt(V3_ENCRYPT2, key=V1_KEY, app_id=V3_APPID) == V3_MSG2


def test_v3_reply_envelope() -> None:
    envelope = encrypted_reply(
        "我是中文abcd123".encode(),
        key=V1_KEY,
        app_id=V3_APPID,
        token="pamtest",
        timestamp="1409304348",
        nonce="xxxxxx",
        random_prefix=b"aaaabbbbccccdddd",
    )
    fields = parse_xml(envelope, max_bytes=MAX)
    assert fields == {
        "Encrypt": V3_ENCRYPT,
        "MsgSignature": "82c962d39941aa48552f90ef55aa323dc620cc10",
        "TimeStamp": "1409304348",
        "Nonce": "xxxxxx",
    }


def test_v4_decrypt_and_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    key = aes_key(V4_ENCODING_AES_KEY)
    assert signature("123456", "1411525903", "461056294", V4_ENCRYPT) == (
        "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
    )
    assert decrypt(V4_ENCRYPT, key=key, app_id=V4_APPID) == V4_PLAIN
    envelope = encrypted_reply(
        V4_REPLY,
        key=key,
        app_id=V4_APPID,
        token="123456",
        timestamp="1411525903",
        nonce="461056294",
        random_prefix=b"1234567890123456",
    )
    fields = parse_xml(envelope, max_bytes=MAX)
    assert fields["Encrypt"] == V4_REPLY_ENCRYPT
    assert fields["MsgSignature"] == "407518b7649e86ef23978113f92d27afa9296533"
    # The whole envelope matches wechatpy's template byte for byte, not just its fields.
    monkeypatch.setattr(
        wechatpy.crypto.PrpCrypto, "get_random_string", lambda _: "1234567890123456"
    )
    peer = WeChatCrypto("123456", V4_ENCODING_AES_KEY, V4_APPID)
    assert envelope == peer.encrypt_message(V4_REPLY.decode(), "461056294", "1411525903").encode()


def test_v5_all_zero_key() -> None:
    key = aes_key("A" * 43)
    assert key == bytes(32)
    encrypted = parse_xml(V5_BODY, max_bytes=MAX)["Encrypt"]
    assert signature("AAAAA", "1715943329", "1590219412", encrypted) == (
        "6c12a4205838198b8fa631b3220723bb07f1015c"
    )
    plain = decrypt(encrypted, key=key, app_id=V5_APPID)
    assert plain == V5_PLAIN
    assert len(plain) == 292
    assert encrypt(plain, key=key, app_id=V5_APPID, random_prefix=b"1205899eaf019bbd") == encrypted
    reply = b"<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
    envelope = encrypted_reply(
        reply,
        key=key,
        app_id=V5_APPID,
        token="AAAAA",
        timestamp="1713424427",
        nonce="415670741",
        random_prefix=b"999951349e8ee746",
    )
    fields = parse_xml(envelope, max_bytes=MAX)
    assert fields["Encrypt"] == V5_REPLY_ENCRYPT
    assert fields["MsgSignature"] == "03e0812039325c2712ef5f0f980fd14c70d6e307"


# wechatpy as the independent peer


def test_wechatpy_encrypts_we_decrypt() -> None:
    inbound = (
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
        "<CreateTime>1714036504</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[  路灯坏了 <&>\n ]]></Content><MsgId>6054768590064713728</MsgId></xml>"
    )
    peer = WeChatCrypto("spamtest", V1_ENCODING_AES_KEY, V1_APPID)
    envelope = parse_xml(
        peer.encrypt_message(inbound, "461056294", "1714036504").encode(), max_bytes=MAX
    )
    expected = signature("spamtest", envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"])
    assert signatures_match(expected, envelope["MsgSignature"])
    plain = decrypt(envelope["Encrypt"], key=V1_KEY, app_id=V1_APPID)
    assert plain == inbound.encode()
    assert parse_xml(plain, max_bytes=MAX)["Content"] == "  路灯坏了 <&>\n "


def test_we_encrypt_wechatpy_decrypts() -> None:
    reply = text_reply_xml(
        to_user="oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        from_user="gh_10f6c3c3ac5a",
        create_time=1714036504,
        content="已收到，工单号 A-001",
    )
    envelope = encrypted_reply(
        reply, key=V1_KEY, app_id=V1_APPID, token="spamtest", timestamp="1714036504", nonce="42"
    )
    fields = parse_xml(envelope, max_bytes=MAX)
    peer = WeChatCrypto("spamtest", V1_ENCODING_AES_KEY, V1_APPID)
    assert peer.decrypt_message(envelope, fields["MsgSignature"], "1714036504", "42") == (
        reply.decode()
    )


@pytest.mark.parametrize(
    "content", ["已收到", "evil ]]><Foo>bar</Foo>", "a <&> b", "]]>]]>", "x]]]]>y"]
)
def test_text_reply_parses_in_wechatpy(content: str) -> None:
    xml = text_reply_xml(
        to_user="openid", from_user="gh_x", create_time=1714036504, content=content
    )
    message = parse_message(xml.decode())
    assert (message.type, message.source, message.target) == ("text", "gh_x", "openid")
    assert message.content == content
    assert deserialize_reply(xml.decode()).content == content
    assert parse_xml(xml, max_bytes=MAX)["Content"] == content


def test_text_reply_drops_characters_xml_forbids() -> None:
    xml = text_reply_xml(to_user="u", from_user="g", create_time=1, content="a\x00b\x08c\ud800d\n")
    assert parse_xml(xml, max_bytes=MAX)["Content"] == "abcd\n"


# Key rotation


def test_decrypt_any_falls_back_to_previous_key() -> None:
    under_old = encrypt(b"<xml/>", key=V1_KEY, app_id=V1_APPID)
    assert decrypt_any(under_old, keys=[OTHER_KEY, V1_KEY], app_id=V1_APPID) == (b"<xml/>", V1_KEY)
    under_new = encrypt(b"<xml/>", key=OTHER_KEY, app_id=V1_APPID)
    assert decrypt_any(under_new, keys=[OTHER_KEY, V1_KEY], app_id=V1_APPID) == (
        b"<xml/>",
        OTHER_KEY,
    )


def test_decrypt_any_prefers_bad_app_id_over_undecryptable() -> None:
    encrypted = encrypt(b"<xml/>", key=V1_KEY, app_id=V1_APPID)
    with pytest.raises(BadAppId):
        decrypt_any(encrypted, keys=[OTHER_KEY, V1_KEY], app_id="wx_other")
    with pytest.raises(Undecryptable):
        decrypt_any(encrypted, keys=[OTHER_KEY, bytes(32)], app_id=V1_APPID)
    with pytest.raises(BadKey):
        decrypt_any(encrypted, keys=[], app_id=V1_APPID)


# Negative cases


def test_signatures_match_rejects_without_raising() -> None:
    good = signature("spamtest", "1409735669", "1320562132")
    assert signatures_match(good, good)
    assert not signatures_match(good, "0" * 40)
    assert not signatures_match(good, good[:-1])
    assert not signatures_match(good, "签名" * 20)
    assert not signatures_match(good, "\ud800" * 40)
    assert not signatures_match(good, "")


def test_wrong_msg_signature() -> None:
    encrypted = parse_xml(V1_BODY, max_bytes=MAX)["Encrypt"]
    expected = signature("spamtest", "1409735669", "1320562132", encrypted)
    assert not signatures_match(expected, "5d197aaffba7e9b25a30732f161a50dee96bd5fb")
    # The plain 3-part signature is not the msg_signature (wechatpy issue #739).
    assert not signatures_match(expected, "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a")


def test_wrong_app_id() -> None:
    encrypted = parse_xml(V1_BODY, max_bytes=MAX)["Encrypt"]
    with pytest.raises(BadAppId):
        decrypt(encrypted, key=V1_KEY, app_id="wx_other")


@pytest.mark.parametrize(
    "encrypted",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64!!", id="garbage"),
        pytest.param("密文密文", id="non-ascii"),
        pytest.param("hyzAe4OzmOMbd6Tv GdIOO6uBmdJoD0Fk", id="embedded-space"),
        pytest.param(base64.b64encode(bytes(31)).decode(), id="not-whole-blocks"),
        pytest.param(base64.b64encode(bytes(16)).decode(), id="one-block-garbage"),
        pytest.param(raw_encrypt(bytes(64)), id="pad-0"),
        pytest.param(raw_encrypt(bytes(63) + b"\x21"), id="pad-33"),
        pytest.param(raw_encrypt(frame(b"<xml/>")[:27] + b"\x05\x05\x04\x05\x05"), id="pad-mixed"),
        pytest.param(raw_encrypt(bytes([32]) * 32), id="nothing-left"),
        pytest.param(raw_encrypt(pkcs7(frame(b"<xml/>", msg_len=1000))), id="msg_len-too-long"),
        pytest.param(raw_encrypt(pkcs7(frame(b"\xff\xfe<xml/>"))), id="not-utf8"),
    ],
)
def test_undecryptable(encrypted: str) -> None:
    with pytest.raises(Undecryptable):
        decrypt(encrypted, key=V1_KEY, app_id=V1_APPID)


def test_truncated_ciphertext() -> None:
    ciphertext = base64.b64decode(parse_xml(V1_BODY, max_bytes=MAX)["Encrypt"])
    for cut in (1, 15, 17):
        with pytest.raises(Undecryptable):
            decrypt(base64.b64encode(ciphertext[:-cut]).decode(), key=V1_KEY, app_id=V1_APPID)
    # Dropping a whole block keeps CBC decryptable but breaks the padding.
    with pytest.raises(Undecryptable):
        decrypt(base64.b64encode(ciphertext[:-16]).decode(), key=V1_KEY, app_id=V1_APPID)


def test_crafted_frame_round_trips() -> None:
    """Guards the helpers above: a well-formed crafted frame does decrypt."""
    assert decrypt(raw_encrypt(pkcs7(frame(b"<xml/>"))), key=V1_KEY, app_id=V1_APPID) == b"<xml/>"


@pytest.mark.parametrize(
    "encoding_aes_key",
    [
        V1_ENCODING_AES_KEY[:-1],
        V1_ENCODING_AES_KEY + "A",
        V1_ENCODING_AES_KEY[:-1] + "=",
        V1_ENCODING_AES_KEY[:-1] + "+",
        V1_ENCODING_AES_KEY[:-1] + "Ａ",
        V1_ENCODING_AES_KEY[:-1] + "\n",
        "",
    ],
)
def test_bad_encoding_aes_key(encoding_aes_key: str) -> None:
    with pytest.raises(BadKey):
        aes_key(encoding_aes_key)


def test_wrong_size_aes_key() -> None:
    with pytest.raises(BadKey):
        decrypt(V3_ENCRYPT, key=V1_KEY[:16], app_id=V3_APPID)
    with pytest.raises(BadKey):
        encrypt(b"<xml/>", key=V1_KEY[:24], app_id=V3_APPID)


def test_errors_share_a_base() -> None:
    assert all(
        issubclass(e, WeChatCryptoError) for e in (BadAppId, BadKey, BadSignature, Undecryptable)
    )


# Hardened XML

XXE = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><Content>&xxe;</Content></xml>"
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<xml><Content>&lol3;</Content></xml>"
)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(XXE, id="xxe"),
        pytest.param(LAUGHS, id="billion-laughs"),
        pytest.param(b"<!DOCTYPE xml><xml><Content>hi</Content></xml>", id="doctype"),
        pytest.param(b'<!DOCTYPE xml SYSTEM "http://evil.test/x.dtd"><xml/>', id="external-dtd"),
        pytest.param(b"<root><Content>hi</Content></root>", id="wrong-root"),
        pytest.param(b"<xml><Content>hi</xml>", id="malformed"),
        pytest.param(b"<xml><a>1</a></xml><xml/>", id="two-roots"),
        pytest.param(b"", id="empty"),
        pytest.param(b"success", id="not-xml"),
        pytest.param(b"<xml><Content>\xff\xfe</Content></xml>", id="not-utf8"),
        pytest.param(b"<xml>" + b"<a>" * 9 + b"</a>" * 9 + b"</xml>", id="too-deep"),
    ],
)
def test_parse_xml_rejects(body: bytes) -> None:
    with pytest.raises(XmlRejected):
        parse_xml(body, max_bytes=MAX)


def test_parse_xml_size_cap() -> None:
    body = b"<xml><Content>" + b"x" * 100 + b"</Content></xml>"
    assert parse_xml(body, max_bytes=len(body))["Content"] == "x" * 100
    with pytest.raises(XmlRejected):
        parse_xml(body, max_bytes=len(body) - 1)


def test_parse_xml_keeps_text_exactly() -> None:
    body = (
        "<xml><Content><![CDATA[  路灯坏了 <&>\n\t ]]></Content><Plain> a &lt;b&gt; </Plain>"
        "<Empty></Empty><Self/></xml>"
    ).encode()
    assert parse_xml(body, max_bytes=MAX) == {
        "Content": "  路灯坏了 <&>\n\t ",
        "Plain": " a <b> ",
        "Empty": "",
        "Self": "",
    }


def test_parse_xml_flattens_nested_elements() -> None:
    body = (
        b"<xml><MsgType><![CDATA[event]]></MsgType><ScanCodeInfo><ScanType><![CDATA[qrcode]]>"
        b"</ScanType><ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo><SendPicsInfo><Count>2"
        b"</Count><PicList><item><PicMd5Sum>first</PicMd5Sum></item><item><PicMd5Sum>second"
        b"</PicMd5Sum></item></PicList></SendPicsInfo></xml>"
    )
    assert parse_xml(body, max_bytes=MAX) == {
        "MsgType": "event",
        "ScanCodeInfo.ScanType": "qrcode",
        "ScanCodeInfo.ScanResult": "1",
        "SendPicsInfo.Count": "2",
        "SendPicsInfo.PicList.item.PicMd5Sum": "first",
    }
