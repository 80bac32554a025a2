"""One JSON log line per request, a request id, and Prometheus figures."""

import json
import logging
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "govinbox_http_requests_total",
    "HTTP requests by route and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "govinbox_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# Attributes every LogRecord has; anything else was passed in `extra=` and belongs in the line.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """Structured lines; callers pass ids and figures in `extra`, never secrets or bodies."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StdoutHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stdout is at the time (pytest swaps and closes its captures)."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(level: str) -> None:
    """JSON lines on stdout; idempotent, and leaves handlers others installed (pytest's) alone."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl call
    # httpx logs every URL at INFO; platform APIs carry access tokens in query strings.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn's own access log would repeat our request line without the request id.
    logging.getLogger("uvicorn.access").disabled = True


access_log = logging.getLogger("govinbox.access")


class RequestLog:
    """ASGI middleware: request id, access line, metrics. Never logs query strings or bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = (
            incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            # The route template, not the path, keeps the metric's label set small.
            route = getattr(scope.get("route"), "path", "other")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(duration)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
