"""A fake WeChat API on loopback, a real HTTP server (uvicorn in a thread), built from
docs/platforms.md: the stable-token endpoint, the customer-service text message, the
subscription notification and the template message,
with the errors the protocol brief lists. Tests script what the next sends answer."""

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40014: "invalid access_token",
    42001: "access_token expired",
    40007: "invalid media_id",
    40037: "invalid template_id",
    43004: "require subscribe",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
}


@dataclass
class FakeWeChat:
    url: str = ""
    token: str = ""
    tokens: list[dict[str, Any]] = field(default_factory=list)  # each token call's body
    sends: list[dict[str, Any]] = field(default_factory=list)  # each send that was accepted
    # media/get: the files it still keeps, by media_id (content, type); others expired.
    media_files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # Videos: media/get answers their address (`video_url`), served by this fake too.
    videos: dict[str, bytes] = field(default_factory=dict)
    media_requests: int = 0
    # freepublish/batchget: the items it answers (as the platform shapes them), newest first.
    published: list[dict[str, Any]] = field(default_factory=list)
    batchget_calls: list[dict[str, Any]] = field(default_factory=list)
    publish_refused: bool = False  # the account has no such privilege (48001)
    summaries: list[dict[str, Any]] = field(default_factory=list)  # getarticlesummary's list
    # comment/list: the comments per (msg_data_id, index); comment/reply/add: the replies.
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    comment_calls: list[dict[str, Any]] = field(default_factory=list)
    comment_replies: dict[tuple[str, int, str], str] = field(default_factory=dict)
    # Each notification accepted: (endpoint, body), endpoint "bizsend" or "template".
    notifications: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: int = 0  # every send request, answered or not
    script: list[int] = field(default_factory=list)  # what the next sends answer (0: ok)
    expired: set[str] = field(default_factory=set)  # tokens the platform no longer takes
    token_broken: bool = False  # the token endpoint answers an HTTP 500 page, not JSON
    # While set, a send is held open until the gate opens (to kill a worker mid-call).
    gate: threading.Event | None = None
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _new_token(self) -> str:
        self.token = f"TOKEN-{next(self._serial)}"
        return self.token

    async def stable_token(self, request: Request) -> Response:
        body = await request.json()
        self.tokens.append(body)
        if self.token_broken:
            return Response("<html>502 Bad Gateway</html>", status_code=502)
        if body.get("force_refresh") or not self.token:
            self._new_token()
        return JSONResponse({"access_token": self.token, "expires_in": 7200})

    async def send(self, request: Request) -> JSONResponse:
        self.requests += 1
        body = await request.json()
        if self.gate is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        given = request.query_params.get("access_token", "")
        if given in self.expired or given != self.token:
            code = 42001 if given in self.expired else 40014
            return JSONResponse({"errcode": code, "errmsg": ERRMSG[code]})
        code = self.script.pop(0) if self.script else 0
        if code:
            return JSONResponse({"errcode": code, "errmsg": ERRMSG.get(code, "error")})
        self.sends.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _notify(self, request: Request, endpoint: str) -> JSONResponse:
        """subscribe/bizsend and template/send: the same token rules and scripted errors; a
        template message's answer carries its msgid (docs/platforms.md)."""
        self.requests += 1
        body = await request.json()
        given = request.query_params.get("access_token", "")
        if given in self.expired or given != self.token:
            code = 42001 if given in self.expired else 40014
            return JSONResponse({"errcode": code, "errmsg": ERRMSG[code]})
        if not (body.get("touser") and body.get("template_id") and body.get("data")):
            return JSONResponse({"errcode": 47003, "errmsg": "argument invalid! data.xxx.value"})
        code = self.script.pop(0) if self.script else 0
        if code:
            return JSONResponse({"errcode": code, "errmsg": ERRMSG.get(code, "error")})
        self.notifications.append((endpoint, body))
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        if endpoint == "template":
            answer["msgid"] = 200228332 + len(self.notifications)
        return JSONResponse(answer)

    async def media(self, request: Request) -> Response:
        """media/get: the file for a known media_id; 40007 once it expired (3 days)."""
        given = request.query_params.get("access_token", "")
        if given in self.expired or given != self.token:
            code = 42001 if given in self.expired else 40014
            return JSONResponse({"errcode": code, "errmsg": ERRMSG[code]})
        self.media_requests += 1
        media_id = request.query_params.get("media_id", "")
        if media_id in self.videos:
            return JSONResponse({"video_url": f"{self.url}/video/{media_id}.mp4"})
        found = self.media_files.get(media_id)
        if found is None:
            return JSONResponse({"errcode": 40007, "errmsg": "invalid media_id"})
        content, content_type = found
        return Response(content, media_type=content_type)

    async def video(self, request: Request) -> Response:
        """A video's address, as media/get gave it."""
        return Response(self.videos[request.path_params["media_id"]], media_type="video/mp4")

    async def batchget(self, request: Request) -> JSONResponse:
        """freepublish/batchget: the published articles, newest first, `count` from `offset`."""
        given = request.query_params.get("access_token", "")
        if given != self.token:
            return JSONResponse({"errcode": 40014, "errmsg": ERRMSG[40014]})
        if self.publish_refused:
            return JSONResponse({"errcode": 48001, "errmsg": "api unauthorized"})
        body = await request.json()
        offset, count = int(body["offset"]), min(int(body["count"]), 20)
        page = self.published[offset : offset + count]
        self.batchget_calls.append(body)
        return JSONResponse(
            {"total_count": len(self.published), "item_count": len(page), "item": page}
        )

    def _refused(self, request: Request) -> JSONResponse | None:
        given = request.query_params.get("access_token", "")
        if given in self.expired or given != self.token:
            code = 42001 if given in self.expired else 40014
            return JSONResponse({"errcode": code, "errmsg": ERRMSG[code]})
        return None

    async def summary(self, request: Request) -> JSONResponse:
        """datacube/getarticlesummary: one day's sent articles (msgid "<msg_data_id>_<idx>")."""
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        day = body["begin_date"]
        return JSONResponse({"list": [s for s in self.summaries if s["ref_date"] == day]})

    async def comment_list(self, request: Request) -> JSONResponse:
        """comment/list: count < 50 from begin; 88000 without the comment privilege."""
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        if int(body["count"]) >= 50:
            return JSONResponse({"errcode": 45004, "errmsg": "count out of range"})
        self.comment_calls.append(body)
        found = self.comments.get((str(body["msg_data_id"]), int(body["index"])))
        if found is None:
            return JSONResponse({"errcode": 88000, "errmsg": "without comment privilege"})
        begin, count = int(body["begin"]), int(body["count"])
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "total": len(found),
                "comment": found[begin : begin + count],
            }
        )

    async def comment_reply(self, request: Request) -> JSONResponse:
        """comment/reply/add: one reply per comment; 88005 once it has one."""
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        self.requests += 1
        key = (str(body["msg_data_id"]), int(body["index"]), str(body["user_comment_id"]))
        if key in self.comment_replies:
            return JSONResponse({"errcode": 88005, "errmsg": "already reply"})
        self.comment_replies[key] = str(body["content"])
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def bizsend(self, request: Request) -> JSONResponse:
        return await self._notify(request, "bizsend")

    async def template(self, request: Request) -> JSONResponse:
        return await self._notify(request, "template")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/cgi-bin/stable_token", self.stable_token, methods=["POST"]),
                Route("/cgi-bin/message/custom/send", self.send, methods=["POST"]),
                Route("/cgi-bin/message/subscribe/bizsend", self.bizsend, methods=["POST"]),
                Route("/cgi-bin/message/template/send", self.template, methods=["POST"]),
                Route("/cgi-bin/media/get", self.media, methods=["GET"]),
                Route("/video/{media_id:str}.mp4", self.video, methods=["GET"]),
                Route("/cgi-bin/freepublish/batchget", self.batchget, methods=["POST"]),
                Route("/datacube/getarticlesummary", self.summary, methods=["POST"]),
                Route("/cgi-bin/comment/list", self.comment_list, methods=["POST"]),
                Route("/cgi-bin/comment/reply/add", self.comment_reply, methods=["POST"]),
            ]
        )


class Fake(Protocol):
    url: str

    def app(self) -> Starlette: ...


F = TypeVar("F", bound=Fake)


@contextmanager
def serve(fake: F) -> Iterator[F]:
    """The fake on a free loopback port, in a thread of its own, for the `with` block."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=5)
