"""`make run`: database (embedded unless DATABASE_URL is set), migrations, admin token, then the
API and the job worker in one process. Production runs them apart (README, Production)."""

import asyncio
import logging
import os
import secrets
import signal
import sys
from datetime import UTC, datetime
from types import FrameType

import uvicorn

from app import embedded, worker
from app.db import migrate, wait_for_database
from app.deadlines import store as calendar
from app.settings import configuration_error, settings, settings_or_exit

logger = logging.getLogger("govinbox.serve")


def _database_url() -> tuple[str, str]:
    configured = settings().database_url
    if configured is not None:
        return configured, "DATABASE_URL"
    if not settings().allow_embedded_database:
        configuration_error("DATABASE_URL", "is required (ALLOW_EMBEDDED_DATABASE is false)")
    server = embedded.start(settings().data_dir / "pgdata")
    url = embedded.ensure_database(server, "govinbox")
    return url, f"embedded PostgreSQL in {settings().data_dir / 'pgdata'}"


def _admin_token() -> str:
    if settings().admin_token is not None:
        return "from ADMIN_TOKEN (use it as: Authorization: Bearer $ADMIN_TOKEN)"
    if not settings().allow_embedded_database:
        # A server with a real database gets its token from its operator, not from a file here.
        configuration_error("ADMIN_TOKEN", "is required (ALLOW_EMBEDDED_DATABASE is false)")
    path = settings().data_dir / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    os.environ["ADMIN_TOKEN"] = path.read_text().strip()
    return (
        f"generated and kept in {path}; try:\n"
        f'  curl -H "Authorization: Bearer $(cat {path})" '
        f"http://{settings().host}:{settings().port}/api/v1/admin/departments"
    )


def prepare_database() -> tuple[str, str]:
    """The database this process uses (embedded unless DATABASE_URL is set), migrated to head;
    returns its URL and where it is. `make run` and `make demo` start here."""
    url, source = _database_url()
    os.environ["DATABASE_URL"] = url
    settings.cache_clear()
    wait_for_database(url)
    if (
        not settings().allow_embedded_database
        and "public_base_url" not in settings().model_fields_set
    ):
        # Citizens' links to the answer page are built on it: never a loopback address.
        configuration_error(
            "PUBLIC_BASE_URL",
            "is required (ALLOW_EMBEDDED_DATABASE is false): the answer page's "
            "links in citizens' messages are built on it",
        )
    migrate(url)
    # Official years come with the migrations (0014); provisional ones up to today + 2 are kept by
    # the daily job, and written here too so a new database is ready at once (idempotent).
    asyncio.run(calendar.seed_provisional(url, now=datetime.now(UTC)))
    return url, source


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    settings_or_exit()
    # SIGTERM before the server runs (during migrations, say) ends the process through `finally`,
    # so the embedded PostgreSQL is stopped on every exit path.
    signal.signal(signal.SIGTERM, _stop)
    try:
        _main()
    finally:
        embedded.stop()


def _main() -> None:
    url, source = prepare_database()
    token_source = _admin_token()
    settings.cache_clear()
    host, port = settings().host, settings().port
    print(
        "job worker: running beside the API (queues: " + ", ".join(worker.QUEUES) + ")\n"
        f"govinbox listening on http://{host}:{port} (API docs: http://{host}:{port}/docs)\n"
        f"database: {source}\n"
        f"admin token: {token_source}",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn stops on SIGTERM/SIGINT and then raises the same signal again "for the expected
    # behaviour": with the default handler that kills the process before any clean-up runs (the
    # embedded PostgreSQL was left running). Ignored here, the process ends normally instead.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        asyncio.run(_serve(url, host, port))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve(url: str, host: str, port: int) -> None:
    config = uvicorn.Config(
        "app.main:create_app", factory=True, host=host, port=port, log_config=None
    )
    server = uvicorn.Server(config)
    jobs = asyncio.create_task(worker.run(url))
    failed: list[BaseException | None] = []

    def worker_ended(task: asyncio.Task[None]) -> None:
        # The worker rides out database outages by itself (app.worker.run); if it still ends, the
        # API must not go on answering `success` with nobody working the queue.
        if not task.cancelled():
            failed.append(task.exception())
            logger.error("job worker stopped; stopping the server", exc_info=task.exception())
            server.should_exit = True

    jobs.add_done_callback(worker_ended)
    try:
        await server.serve()  # returns on Ctrl-C / SIGTERM
    finally:
        jobs.cancel()
        # Bounded: the worker's own grace for running jobs, and a little more.
        await asyncio.wait({jobs}, timeout=worker.SHUTDOWN_GRACE_SECONDS + 5)
    if failed:
        raise SystemExit(1)  # a supervisor that restarts on failure must see one


if __name__ == "__main__":
    main()
