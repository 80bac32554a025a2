"""Embedded PostgreSQL (the `pgserver` wheel) for machines where DATABASE_URL is unset."""

import json
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

# pgserver keeps the pids of the processes using a server in this file and stops the server when
# the last of them exits. A process killed outright never removes its pid, and from then on the
# server was never stopped again.
HANDLE_PIDS = ".handle_pids.json"
_started: list[Any] = []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_users(pgdata: Path) -> list[int]:
    """Drop the pids of processes that no longer exist from pgserver's list; returns them."""
    path = pgdata / HANDLE_PIDS
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    dead = [pid for pid in pids if not _alive(pid)]
    if dead:
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def start(pgdata: Path) -> str:
    """Start (or join) the server in `pgdata`; stops when the last process using it exits.

    Returns a SQLAlchemy URL to its maintenance database `postgres`, over the Unix socket.
    """
    pgdata.mkdir(parents=True, exist_ok=True)
    forget_dead_users(pgdata)
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR, a directory pgserver never uses.
        warnings.simplefilter("ignore", UserWarning)
        from pgserver import get_server  # type: ignore[attr-defined]  # re-exported, not in __all__

        server = get_server(pgdata, cleanup_mode="stop")
    _started.append(server)
    return f"postgresql+psycopg://postgres@/postgres?host={quote(str(server.pgdata))}"


def stop() -> None:
    """Leave the servers this process started or joined (the last user stops each one)."""
    while _started:
        _started.pop().cleanup()


def libpq_url(url: str) -> str:
    """The same URL for psycopg itself (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    """`url` pointed at database `name` instead."""
    head, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    query = path.partition("?")[2]
    return f"{head}://{authority}/{name}" + (f"?{query}" if query else "")


def create_database(url: str, name: str, *, template: str | None = None) -> str:
    """CREATE DATABASE `name` on the server of `url`; returns its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(statement)
    return with_database(url, name)


def ensure_database(url: str, name: str) -> str:
    """Create database `name` unless it exists; returns its URL."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
    return with_database(url, name) if exists else create_database(url, name)


def drop_database(url: str, name: str) -> None:
    """DROP DATABASE `name`, ending any sessions still connected."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
