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

    def app(self) -> Starlette:
        return Starlette(routes=[Route(PATH, self.reply, methods=["POST"])])
