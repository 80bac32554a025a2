"""`Idempotency-Key` on every department POST: a retry with the same key and body gets the first
answer and does nothing again; the same key with another body is a 422. Keys are kept 24 hours.

The key is claimed in the request's own transaction, and the answer stored in it before the
commit: the action and its record commit together or not at all. A second request with the same
key waits on the first's uncommitted claim (the unique index), then reads its stored answer; if
the first failed, nothing was kept and the second runs. So a client that timed out can never
send a citizen the same answer twice.
"""

import hashlib
import inspect
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.auth import CurrentPrincipal
from app.clock import NowDep
from app.db import Base, SessionDep, sessionmaker
from app.problems import PreconditionFailed, Problem, doc, merged
from app.settings import settings
from app.worker import app as jobs

HEADER = "Idempotency-Key"
# What a replay repeats besides the body.
_KEPT_HEADERS = ("content-type", "etag", "location")


class IdempotencyRecord(Base):
    """One claimed key of one API key: what was asked (a hash) and what was answered."""

    __tablename__ = "idempotency_key"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1000))
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("api_key_id", "key"),
        Index("ix_idempotency_key_created_at", "created_at"),  # the daily purge
    )


class KeyReused(Problem):
    status = 422
    title = "Idempotency-Key reused with another request"
    slug = "idempotency-key-reused"
    example_detail = (
        "Idempotency-Key 'a1b2' was first used with another body or route: use a new key for a "
        "new request."
    )


class BadKey(Problem):
    status = 422
    title = "Unusable Idempotency-Key"
    slug = "bad-idempotency-key"
    example_detail = "An Idempotency-Key is 1 to 255 visible ASCII characters."


class _Replay(Exception):
    """The stored answer to send instead of running the route again."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _fingerprint(method: str, path: str, body: bytes) -> str:
    """The request, as the key promises it: route and body (JSON compared by value, so a client
    re-serialising the same body with other spacing or key order is the same request)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


_EXPIRE = text(
    "DELETE FROM idempotency_key WHERE api_key_id = :api_key AND key = :key"
    " AND created_at < :expired"
)
_CLAIM = text(
    """
    INSERT INTO idempotency_key (api_key_id, key, request_hash, method, path, created_at)
    VALUES (:api_key, :key, :hash, :method, :path, :now)
    ON CONFLICT (api_key_id, key) DO NOTHING
    RETURNING id
    """
)


async def idempotent(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    now: NowDep,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Makes a retry safe: the same key with the same body returns the first "
            "answer and does nothing again (kept 24 h); with another body, 422.",
        ),
    ] = None,
) -> AsyncIterator[None]:
    """Claim the key before the route runs; after it, keep its answer in the same transaction."""
    if key is None or request.method != "POST":
        yield
        return
    if not (1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key)):
        raise BadKey("An Idempotency-Key is 1 to 255 visible ASCII characters.")
    path = request.url.path
    fingerprint = _fingerprint(request.method, path, await request.body())
    expired = now - timedelta(hours=settings().idempotency_keep_hours)
    await session.execute(
        _EXPIRE, {"api_key": principal.api_key_id, "key": key, "expired": expired}
    )
    claimed = await session.scalar(
        _CLAIM,
        {
            "api_key": principal.api_key_id,
            "key": key,
            "hash": fingerprint,
            "method": request.method,
            "path": path,
            "now": now,
        },
    )
    if claimed is None:  # used before (a concurrent first use has committed by now)
        record = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == principal.api_key_id,
                IdempotencyRecord.key == key,
            )
        )
        if record is None or record.request_hash != fingerprint or record.status_code is None:
            raise KeyReused(
                f"Idempotency-Key {key!r} was first used with another body or route: use a new "
                "key for a new request."
            )
        raise _Replay(
            Response(
                content=record.body or b"",
                status_code=record.status_code,
                headers=record.headers | {"Idempotent-Replayed": "true"},
            )
        )
    yield
    response: Response | None = getattr(request.state, "idempotent_response", None)
    if response is not None:
        record = await session.get_one(IdempotencyRecord, claimed)
        record.status_code = response.status_code
        record.body = bytes(response.body)
        record.headers = {h: response.headers[h] for h in _KEPT_HEADERS if h in response.headers}
        await session.flush()


Idempotent = Depends(idempotent, scope="function")


class IdempotentRoute(APIRoute):
    """Hands the route's answer to `idempotent` (which keeps it before the commit), and sends a
    stored answer in place of running the route again. A POST documents the key's problems, and
    the 412 when it takes If-Match."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" not in (kwargs.get("methods") or ()):  # nothing to repeat: no header
            kwargs["dependencies"] = [
                d for d in kwargs.get("dependencies") or () if d.dependency is not idempotent
            ]
        else:
            extra = [KeyReused, BadKey]
            if "if_match" in inspect.signature(endpoint).parameters:
                extra.append(PreconditionFailed)
            kwargs["responses"] = merged(kwargs.get("responses") or {}, doc(*extra))
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except _Replay as replay:
                return replay.response
            request.state.idempotent_response = response
            return response

        return handle


_PURGE = text("DELETE FROM idempotency_key WHERE created_at < :expired")


async def purge(session: AsyncSession, *, now: datetime) -> int:
    """Forget the answers older than IDEMPOTENCY_KEEP_HOURS; returns how many."""
    expired = now - timedelta(hours=settings().idempotency_keep_hours)
    result = await session.execute(_PURGE, {"expired": expired})
    return int(getattr(result, "rowcount", 0) or 0)


@jobs.periodic(cron="17 * * * *")
@jobs.task(name="purge_idempotency_keys", queue="routing", queueing_lock="purge_idempotency_keys")
async def purge_idempotency_keys(timestamp: int) -> None:
    """Hourly; a key is refused as reused only while its answer is kept."""
    async with sessionmaker().begin() as session:
        await purge(session, now=datetime.fromtimestamp(timestamp, UTC))
