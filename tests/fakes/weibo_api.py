"""A fake Weibo API on loopback, a real HTTP server, built from docs/platforms.md:
`POST /2/messages/reply/biz.json` (form-encoded; the text as JSON in `data`), the comment feeds
and replies, a fan's media (`/2/mss/msget`) and the account's timeline
(`/2/statuses/user_timeline.json`), with Weibo's error shape `{"error", "error_code",
"request"}`. One server stands for every Weibo host (c.api, api, upload.api)."""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PATH = "/2/messages/reply/biz.json"


@dataclass
class FakeWeibo:
    url: str = ""
    token: str = "weibo-fan-service-token"
    sends: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    # What the next replies answer: (HTTP status, error_code), or None for a success.
    script: list[tuple[int, int] | None] = field(default_factory=list)
    # comments/to_me and comments/mentions: the comments each feed holds (Weibo's shape).
    feeds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comment_calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    comment_replies: list[dict[str, str]] = field(default_factory=list)
    # What the next comment replies answer: (HTTP status, error_code), or None for a success.
    comment_script: list[tuple[int, int] | None] = field(default_factory=list)
    # mss/msget: the files fans sent, by fid (bytes, content type); any other fid is refused.
    media_files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    media_requests: int = 0
    # statuses/user_timeline: the account's posts (Weibo's shape), and the calls made.
    statuses: list[dict[str, Any]] = field(default_factory=list)
    timeline_calls: list[dict[str, str]] = field(default_factory=list)
    # Comments and posts Weibo hides: each takes its place in a page but is left out.
    hidden: set[int] = field(default_factory=set)
    # An error the timeline answers instead (HTTP status, error_code), e.g. no permission.
    timeline_refusal: tuple[int, int] | None = None

    async def reply(self, request: Request) -> JSONResponse:
        self.requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("access_token") != self.token:
            return self._error(403, 21332, "invalid_access_token")
        planned = self.script.pop(0) if self.script else None
        if planned is not None:
            status, code = planned
            return self._error(status, code, "error")
        sent = {
            "receiver_id": form.get("receiver_id"),
            "type": form.get("type"),
            "data": json.loads(str(form.get("data"))),
        }
        self.sends.append(sent)
        return JSONResponse({"result": True, "receiver_id": sent["receiver_id"]})

    @staticmethod
    def _error(status: int, code: int, message: str) -> JSONResponse:
        return JSONResponse(
            {"error": message, "error_code": code, "request": PATH}, status_code=status
        )

    async def comments(self, request: Request) -> JSONResponse:
        """comments/{to_me,mentions}/biz.json: newer than since_id, at most max_id, newest
        first."""
        query = request.query_params
        if query.get("access_token") != self.token:
            return self._error(403, 21332, "invalid_access_token")
        feed = request.path_params["feed"]
        self.comment_calls.append((feed, dict(query)))
        since, below = int(query.get("since_id", 0)), int(query.get("max_id", 0)) or None
        newer = sorted(
            (
                c
                for c in self.feeds.get(feed, [])
                if int(c["id"]) > since and (below is None or int(c["id"]) <= below)
            ),
            key=lambda c: -int(c["id"]),
        )
        page = newer[: int(query.get("count", 50))]
        shown = [c for c in page if int(c["id"]) not in self.hidden]  # a short page, not the end
        return JSONResponse({"comments": shown, "total_number": len(newer)})

    async def comment_reply(self, request: Request) -> JSONResponse:
        """comments/reply/biz.json: the reply as a comment of the account."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("access_token") != self.token:
            return self._error(403, 21332, "invalid_access_token")
        self.requests += 1
        if self.comment_script and (planned := self.comment_script.pop(0)) is not None:
            status, code = planned
            return self._error(status, code, "error")
        self.comment_replies.append(form)
        return JSONResponse({"id": 9000 + len(self.comment_replies), "text": form.get("comment")})

    async def media(self, request: Request) -> Response:
        """mss/msget: the file with its type; an unknown (or expired) fid is Weibo's error."""
        query = request.query_params
        if query.get("access_token") != self.token:
            return self._error(403, 21332, "invalid_access_token")
        self.media_requests += 1
        found = self.media_files.get(query.get("fid", ""))
        if found is None:
            return self._error(400, 20101, "target weibo does not exist")
        content, content_type = found
        return Response(content, media_type=content_type)

    async def timeline(self, request: Request) -> JSONResponse:
        """statuses/user_timeline: the account's posts newer than since_id and at most max_id,
        newest first, `count` a page; a post in `hidden` takes its place in the page but is left
        out of the answer, so the page comes back short (as Weibo does with what it hides)."""
        query = request.query_params
        if query.get("access_token") != self.token:
            return self._error(403, 21332, "invalid_access_token")
        self.timeline_calls.append(dict(query))
        if self.timeline_refusal is not None:
            status, code = self.timeline_refusal
            return self._error(status, code, "permission denied, need a high level appkey")
        since, below = int(query.get("since_id", 0)), int(query.get("max_id", 0)) or None
        newer = sorted(
            (
                s
                for s in self.statuses
                if int(s["id"]) > since and (below is None or int(s["id"]) <= below)
            ),
            key=lambda s: -int(s["id"]),
        )
        page = newer[: int(query.get("count", 20))]
        shown = [s for s in page if int(s["id"]) not in self.hidden]
        return JSONResponse({"statuses": shown, "total_number": len(newer)})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/2/mss/msget", self.media, methods=["GET"]),
                Route("/2/statuses/user_timeline.json", self.timeline, methods=["GET"]),
                Route(PATH, self.reply, methods=["POST"]),
                Route("/2/comments/reply/biz.json", self.comment_reply, methods=["POST"]),
                Route("/2/comments/{feed:str}/biz.json", self.comments, methods=["GET"]),
            ]
        )
