"""Weibo's APIs, as docs/platforms.md describes them (protocol brief §5, §8.7): the fan-service
reply (`POST /2/messages/reply/biz.json`, form-encoded, the text as URL-encoded JSON in `data`),
comments, a fan's media (`mss/msget`) and the account's timeline."""

import json

import httpx

from app.delivery.wechat import TIMEOUT, Unknown, Unsent, download

# Weibo's token errors (its error-code page): 21301 auth failed, 21314–21319 and 21327 a
# token used, revoked, expired or refused, 21332 an invalid token. The admin sets a new one.
TOKEN = frozenset({21301, 21314, 21315, 21316, 21317, 21318, 21319, 21327, 21332})


class WeiboError(Exception):
    """Weibo answered with an error (`error_code`, `error`), or an HTTP error status."""

    def __init__(self, code: int, message: str, *, busy: bool) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.busy = busy  # a 5xx: worth trying again later


async def _answer(response: httpx.Response) -> dict[str, object]:
    """Weibo's JSON answer, or WeiboError (its error shape, or an HTTP error status)."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "error_code" in answer:
        raise WeiboError(
            int(str(answer["error_code"])),
            str(answer.get("error", "")),
            busy=response.status_code >= 500,
        )
    if response.status_code >= 500 or not isinstance(answer, dict):
        raise Unknown(f"HTTP {response.status_code}, no answer from Weibo")
    if response.status_code >= 400:
        raise WeiboError(response.status_code, "HTTP error", busy=False)
    return answer


async def comments(
    http: httpx.AsyncClient,
    base: str,
    *,
    access_token: str,
    feed: str,
    since_id: int,
    max_id: int | None,
    count: int,
) -> list[dict[str, object]]:
    """GET /2/comments/{to_me|mentions}/biz.json: comments newer than since_id (and at most
    max_id), newest first."""
    return await _page(
        http,
        f"{base}/2/comments/{feed}/biz.json",
        "comments",
        {"access_token": access_token, "since_id": since_id, "count": count},
        max_id=max_id,
    )


async def _page(
    http: httpx.AsyncClient,
    url: str,
    key: str,
    params: dict[str, str | int],
    *,
    max_id: int | None,
) -> list[dict[str, object]]:
    """One page of a read-only feed (newest first, at most max_id): the objects under `key`.
    Reading twice is harmless, so any transport failure is Unsent (tried again later)."""
    if max_id is not None:
        params = params | {"max_id": max_id}
    try:
        response = await http.get(url, params=params, timeout=TIMEOUT)
    except httpx.TransportError as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    found = (await _answer(response)).get(key)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


async def comment_reply(
    http: httpx.AsyncClient,
    base: str,
    *,
    access_token: str,
    comment_id: str,
    post_id: str,
    content: str,
) -> None:
    """POST /2/comments/reply/biz.json: the public reply to a comment (`cid`) under its post
    (`id`)."""
    await _send(
        http,
        f"{base}/2/comments/reply/biz.json",
        {"access_token": access_token, "cid": comment_id, "id": post_id, "comment": content},
    )


async def reply_text(
    http: httpx.AsyncClient, base: str, *, access_token: str, receiver_id: str, content: str
) -> None:
    """A text reply to one fan (their uid), within the window after their message."""
    await _send(
        http,
        f"{base}/2/messages/reply/biz.json",
        {
            "access_token": access_token,
            "type": "text",
            "data": json.dumps({"text": content}, ensure_ascii=False),
            "receiver_id": receiver_id,
            "save_sender_box": "1",
        },
    )


async def _send(http: httpx.AsyncClient, url: str, form: dict[str, str]) -> None:
    """A form POST that sends something: not connected is Unsent (safe to try again), cut
    short Unknown (it may have gone out); then Weibo's answer, or WeiboError."""
    try:
        response = await http.post(url, data=form, timeout=TIMEOUT)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Unknown(f"{type(exc).__name__}: {exc}") from exc
    await _answer(response)


async def get_media(
    http: httpx.AsyncClient, base: str, *, access_token: str, fid: str, max_bytes: int
) -> tuple[bytes, str]:
    """GET /2/mss/msget: a picture or voice a fan sent (its `tovfid`), and its type; an error
    comes in Weibo's JSON shape."""
    response = await download(
        http, f"{base}/2/mss/msget", {"access_token": access_token, "fid": fid}
    )
    content_type = response.headers.get("content-type", "application/octet-stream")
    if response.status_code != 200 or content_type.startswith(("application/json", "text/")):
        await _answer(response)  # Weibo's error, or an HTTP error status
        raise Unknown(f"HTTP {response.status_code}, {content_type} where a file was expected")
    if len(response.content) > max_bytes:
        raise WeiboError(0, f"larger than MEDIA_MAX_BYTES ({max_bytes})", busy=False)
    return response.content, content_type.split(";")[0].strip()


async def user_timeline(
    http: httpx.AsyncClient,
    base: str,
    *,
    access_token: str,
    uid: str,
    since_id: int,
    max_id: int | None,
    count: int,
) -> list[dict[str, object]]:
    """GET /2/statuses/user_timeline.json: the account's own posts newer than since_id (and at
    most max_id), newest first, `count` a page."""
    return await _page(
        http,
        f"{base}/2/statuses/user_timeline.json",
        "statuses",
        {
            "access_token": access_token,
            "uid": uid,
            "since_id": since_id,
            "count": count,
            "trim_user": 1,
        },
        max_id=max_id,
    )
