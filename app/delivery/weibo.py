"""Weibo's fan-service reply API, as docs/platforms.md describes it (protocol brief §5, §8.7):
`POST /2/messages/reply/biz.json`, form-encoded, the text as URL-encoded JSON in `data`."""

import json

import httpx

from app.delivery.wechat import TIMEOUT, Unknown, Unsent


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
    params: dict[str, str | int] = {
        "access_token": access_token,
        "since_id": since_id,
        "count": count,
    }
    if max_id is not None:
        params["max_id"] = max_id
    try:
        response = await http.get(
            f"{base}/2/comments/{feed}/biz.json", params=params, timeout=TIMEOUT
        )
    except httpx.TransportError as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    found = (await _answer(response)).get("comments")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


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
    try:
        response = await http.post(
            f"{base}/2/comments/reply/biz.json",
            data={
                "access_token": access_token,
                "cid": comment_id,
                "id": post_id,
                "comment": content,
            },
            timeout=TIMEOUT,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Unknown(f"{type(exc).__name__}: {exc}") from exc
    await _answer(response)


async def reply_text(
    http: httpx.AsyncClient, base: str, *, access_token: str, receiver_id: str, content: str
) -> None:
    """A text reply to one fan (their uid), within the window after their message."""
    try:
        response = await http.post(
            f"{base}/2/messages/reply/biz.json",
            data={
                "access_token": access_token,
                "type": "text",
                "data": json.dumps({"text": content}, ensure_ascii=False),
                "receiver_id": receiver_id,
                "save_sender_box": "1",
            },
            timeout=TIMEOUT,
        )
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise Unsent(f"{type(exc).__name__}: {exc}") from exc
    except httpx.TransportError as exc:
        raise Unknown(f"{type(exc).__name__}: {exc}") from exc
    await _answer(response)
