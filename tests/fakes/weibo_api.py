"""A fake Weibo fan-service API on loopback, a real HTTP server, built from docs/platforms.md:
`POST /2/messages/reply/biz.json` (form-encoded; the text as JSON in `data`), with Weibo's error
shape `{"error", "error_code", "request"}`."""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
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
        count = int(query.get("count", 50))
        return JSONResponse({"comments": newer[:count], "total_number": len(newer)})

    async def comment_reply(self, request: Request) -> JSONResponse:
        """comments/reply/biz.json: the reply as a comment of the account."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("access_token") != self.token:
            return self._error(403, 21332, "invalid_access_token")
        self.requests += 1
        self.comment_replies.append(form)
        return JSONResponse({"id": 9000 + len(self.comment_replies), "text": form.get("comment")})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(PATH, self.reply, methods=["POST"]),
                Route("/2/comments/reply/biz.json", self.comment_reply, methods=["POST"]),
                Route("/2/comments/{feed:str}/biz.json", self.comments, methods=["GET"]),
            ]
        )
