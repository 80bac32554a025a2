"""WeChat's customer-service API, as docs/platforms.md describes it (protocol brief §4): the
stable access token and the text message. Plain HTTP calls; what to do with each answer is the
delivery service's business."""

from dataclasses import dataclass

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# What an errcode means for a delivery (brief §4.3; wechatpy's constants).
BUSY = frozenset({-1, 45009})  # system busy, frequency limit: back off and try again
TOKEN = frozenset({40001, 40014, 42001})  # invalid or expired token: refresh, retry once
WINDOW = frozenset({45015, 45047})  # the 48 h window closed, or its 5 messages used
GIVE_UP = frozenset({40003, 43004, 45002, 40164})  # bad openid, unfollowed, too long, ip
ALREADY_REPLIED = 88005  # comment/reply/add: the comment has its one reply


class WeChatError(Exception):
    """The platform answered with an errcode other than 0."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class Unsent(Exception):
    """No request reached the platform (the connection failed): safe to try again."""


class Unknown(Exception):
    """The request may have reached the platform, but no answer came back: never resend
    blindly."""


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: int  # seconds


async def _post(http: httpx.AsyncClient, url: str, body: dict[str, object]) -> dict[str, object]:
    try:
        response = await http.post(url, json=body, timeout=TIMEOUT)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Unknown(f"{type(exc).__name__}: {exc}") from exc
    try:
        answer = response.json()
    except ValueError:
        raise Unknown(f"HTTP {response.status_code}, not JSON") from None
    if not isinstance(answer, dict):
        raise Unknown(f"HTTP {response.status_code}, unexpected JSON")
    code = answer.get("errcode", 0)
    if code not in (0, None):
        raise WeChatError(int(str(code)), str(answer.get("errmsg", "")))
    return answer


async def stable_token(
    http: httpx.AsyncClient, base: str, *, app_id: str, secret: str, force: bool
) -> Token:
    """POST /cgi-bin/stable_token: normal mode returns the current token (refreshed by the
    platform 5 min early); force_refresh (20 a day, 30 s apart) invalidates it."""
    answer = await _post(
        http,
        f"{base}/cgi-bin/stable_token",
        {
            "grant_type": "client_credential",
            "appid": app_id,
            "secret": secret,
            "force_refresh": force,
        },
    )
    return Token(str(answer["access_token"]), int(str(answer.get("expires_in", 7200))))


async def download(http: httpx.AsyncClient, url: str, params: dict[str, str]) -> httpx.Response:
    """A GET of a file from a platform: not connected is Unsent, cut short Unknown."""
    try:
        return await http.get(url, params=params, timeout=TIMEOUT)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Unknown(f"{type(exc).__name__}: {exc}") from exc


async def get_media(
    http: httpx.AsyncClient, base: str, *, access_token: str, media_id: str, max_bytes: int
) -> tuple[bytes, str]:
    """GET /cgi-bin/media/get: a temporary media file (image, voice, video) and its type; an
    error comes as JSON (40007: invalid or expired media_id)."""
    response = await download(
        http, f"{base}/cgi-bin/media/get", {"access_token": access_token, "media_id": media_id}
    )
    content_type = response.headers.get("content-type", "application/octet-stream")
    if content_type.startswith(("application/json", "text/plain")):
        try:
            answer = response.json()
        except ValueError:
            raise Unknown(f"HTTP {response.status_code}, not JSON") from None
        if isinstance(answer, dict) and answer.get("video_url"):
            # A video comes as its address (wechatpy's media.download leaves it to the caller).
            video = await download(http, str(answer["video_url"]), {})
            if video.status_code != 200:
                raise Unknown(f"video: HTTP {video.status_code}")
            if len(video.content) > max_bytes:
                raise WeChatError(0, f"larger than MEDIA_MAX_BYTES ({max_bytes})")
            return video.content, video.headers.get("content-type", "video/mp4").split(";")[0]
        raise WeChatError(int(str(answer.get("errcode", -1))), str(answer.get("errmsg", "")))
    if response.status_code != 200:
        raise Unknown(f"HTTP {response.status_code}")
    if len(response.content) > max_bytes:
        raise WeChatError(0, f"larger than MEDIA_MAX_BYTES ({max_bytes})")
    return response.content, content_type.split(";")[0].strip()


async def freepublish_batchget(
    http: httpx.AsyncClient, base: str, *, access_token: str, offset: int, count: int
) -> dict[str, object]:
    """POST /cgi-bin/freepublish/batchget: published articles, newest first (count ≤ 20)."""
    return await _post(
        http,
        f"{base}/cgi-bin/freepublish/batchget?access_token={access_token}",
        {"offset": offset, "count": count, "no_content": 1},
    )


async def comment_list(
    http: httpx.AsyncClient,
    base: str,
    *,
    access_token: str,
    msg_data_id: str,
    index: int,
    begin: int,
    count: int,
) -> dict[str, object]:
    """POST /cgi-bin/comment/list: an article's comments from `begin`, `count` (< 50) at a time;
    type 0: all."""
    return await _post(
        http,
        f"{base}/cgi-bin/comment/list?access_token={access_token}",
        {
            "msg_data_id": int(msg_data_id),
            "index": index,
            "begin": begin,
            "count": count,
            "type": 0,
        },
    )


async def comment_reply(
    http: httpx.AsyncClient,
    base: str,
    *,
    access_token: str,
    msg_data_id: str,
    index: int,
    user_comment_id: str,
    content: str,
) -> None:
    """POST /cgi-bin/comment/reply/add: the one reply a comment takes (88005: replied already)."""
    await _post(
        http,
        f"{base}/cgi-bin/comment/reply/add?access_token={access_token}",
        {
            "msg_data_id": int(msg_data_id),
            "index": index,
            "user_comment_id": int(user_comment_id),
            "content": content,
        },
    )


async def article_summary(
    http: httpx.AsyncClient, base: str, *, access_token: str, day: str
) -> dict[str, object]:
    """POST /datacube/getarticlesummary: one day's sent articles, `msgid` being
    "<msg_data_id>_<index>" (index from 1), with their titles."""
    return await _post(
        http,
        f"{base}/datacube/getarticlesummary?access_token={access_token}",
        {"begin_date": day, "end_date": day},
    )


# A notification's path and the key its link goes under: subscription notification (订阅通知)
# and template message (模板消息, as wechatpy's `message.send_template` sends it).
NOTIFICATIONS = {
    "subscribe": ("message/subscribe/bizsend", "page"),
    "template": ("message/template/send", "url"),
}


async def send_notification(
    http: httpx.AsyncClient,
    base: str,
    kind: str,
    *,
    access_token: str,
    openid: str,
    template_id: str,
    link: str,
    data: dict[str, str],
) -> None:
    """POST /cgi-bin/message/subscribe/bizsend or /cgi-bin/message/template/send: "your
    answer is ready", with the answer page's link."""
    path, link_key = NOTIFICATIONS[kind]
    await _post(
        http,
        f"{base}/cgi-bin/{path}?access_token={access_token}",
        {
            "touser": openid,
            "template_id": template_id,
            link_key: link,
            "data": {key: {"value": value} for key, value in data.items()},
        },
    )


async def send_text(
    http: httpx.AsyncClient, base: str, *, access_token: str, openid: str, content: str
) -> None:
    """POST /cgi-bin/message/custom/send: a text customer-service message."""
    await _post(
        http,
        f"{base}/cgi-bin/message/custom/send?access_token={access_token}",
        {"touser": openid, "msgtype": "text", "text": {"content": content}},
    )
