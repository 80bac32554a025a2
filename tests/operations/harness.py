"""Real processes on a PostgreSQL cluster of the test's own: the README's layouts, database
outages, killed workers. Shared by tests/operations/ and the long version, bench/soak.py.

The cluster is never DATABASE_URL's server (others use it): it is initialised from the pgserver
wheel's binaries in a temporary folder, listens on a free loopback port, and is stopped
(immediate, as a crash would) and started again by the test.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from app.embedded import create_database, libpq_url
from app.webhooks import wechat_crypto as crypto

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "operations-admin-token-0123456789"
WECHAT_TOKEN = "operationsToken123"
ORIGINAL_ID = "gh_0000000ops1"
# WeChat waits 5 s for an answer and then sends the same message again, three times at most.
RETRY_SECONDS = 5.0
SENDS = 4


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR, a directory pgserver never uses here.
        warnings.simplefilter("ignore", UserWarning)
        import pgserver
        import pgserver._commands
        import pgserver.utils

        return pgserver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """A PostgreSQL server in `folder`, on a loopback port, that the test may stop and start."""

    def __init__(self, folder: Path) -> None:
        self.pgdata = folder / "pgdata"
        self.log = folder / "postgres.log"
        self.port = free_port()
        # PostgreSQL refuses to run as root; pgserver runs it as its own system user.
        self.user = "pgserver" if os.geteuid() == 0 else None

    def init(self) -> None:
        self.pgdata.mkdir(parents=True)
        pgserver = _pgserver()
        if self.user is not None:
            # What pgserver does before it runs its binaries as its user (a fresh clone's venv
            # may sit in a folder only root can enter).
            utils, binaries = pgserver.utils, pgserver._commands.POSTGRES_BIN_PATH
            utils.ensure_user_exists(self.user)
            utils.ensure_prefix_permissions(binaries)
            readable, executable = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
            utils.ensure_folder_permissions(binaries, readable | executable)
            utils.ensure_folder_permissions(binaries.parent / "lib", readable)
            utils.ensure_prefix_permissions(self.pgdata)
            os.chown(self.pgdata, *_ids(self.user))
            self.log.touch()
            os.chown(self.log, *_ids(self.user))
        pgserver.initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"],
            pgdata=self.pgdata,
            user=self.user,
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            # A throwaway cluster: durability off for speed; room for 2 APIs and 2 workers.
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = ''\nmax_connections = 300\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\n"
            )

    def start(self) -> None:
        _pgserver().pg_ctl(
            ["-w", "-t", "60", "-l", str(self.log), "start"],
            pgdata=self.pgdata,
            user=self.user,
            timeout=90,
        )

    def stop(self, mode: str = "fast") -> None:
        _pgserver().pg_ctl(
            ["-w", "-m", mode, "stop"], pgdata=self.pgdata, user=self.user, timeout=60
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        return create_database(self.url(), f"govinbox_ops_{secrets.token_hex(4)}")


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def cluster(folder: Path) -> Iterator[Cluster]:
    server = Cluster(folder)
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop("immediate")


class Processes:
    """The service's processes, each logging to a file; all stopped at the end."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST", "DATABASE_", "WEBHOOK_"))
        } | {
            "DATABASE_URL": database_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ALLOW_EMBEDDED_DATABASE": "false",
            "PUBLIC_BASE_URL": "https://govinbox.example.gov.cn",
            "HOST": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "DATABASE_POOL_SIZE": "10",
            "PYTHONUNBUFFERED": "1",
        }
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env | env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = process
        return process

    def run(self, *args: str) -> None:
        """A one-off command (migrations), which must succeed."""
        subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env, check=True, capture_output=True
        )

    def kill(self, name: str) -> None:
        self.running[name].send_signal(signal.SIGKILL)
        self.running[name].wait()

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.running.items()}

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def wait_until_ready(base: str, *, within: float = 60.0) -> float:
    """Seconds until /readyz answers 200."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=2.5) as client:
        while time.monotonic() - started < within:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return time.monotonic() - started
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{base}/readyz not 200 within {within} s")


async def set_up_account(base: str) -> None:
    """An office and a plain-mode WeChat account, through the admin API."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as admin:
        office = await admin.post(
            "/api/v1/admin/departments",
            json={
                "code": "ops-office",
                "name": "合肥市人民政府办公室",
                "level": "city",
                "region_code": "340100",
                "is_supervising_office": True,
            },
        )
        assert office.status_code == 201, office.text
        account = await admin.post(
            "/api/v1/admin/accounts",
            json={
                "code": "ops-wechat",
                "platform": "wechat",
                "account_type": "wechat_service",
                "display_name": "合肥发布",
                "department_code": "ops-office",
                "wechat_original_id": ORIGINAL_ID,
                "wechat_token": WECHAT_TOKEN,
            },
        )
        assert account.status_code == 201, account.text


def _request(n: int, run: str) -> tuple[str, bytes]:
    """Delivery n as WeChat sends it (plain mode), signed now."""
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    query = urlencode(
        {"signature": crypto.signature(WECHAT_TOKEN, timestamp, nonce), "timestamp": timestamp}
        | {"nonce": nonce}
    )
    body = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[o{run}{n:012d}]]></FromUserName>"
        f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[社保断缴了怎么补缴？第{n}条]]></Content><MsgId>{10**15 + n}</MsgId></xml>"
    ).encode()
    return f"/webhooks/wechat/ops-wechat?{query}", body


@dataclass
class Replay:
    """What the platform saw: every answer, and which deliveries got `success` at least once."""

    statuses: Counter[str] = field(default_factory=Counter)
    answered: set[int] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)

    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[int(len(ordered) * 0.99)] if ordered else 0.0


async def replay(
    bases: list[str],
    deliveries: int,
    *,
    per_second: float,
    retry_seconds: float = RETRY_SECONDS,
    sends: int = SENDS,
    concurrency: int = 64,
) -> Replay:
    """Each delivery sent `sends` times, `retry_seconds` apart, whatever it was answered (the
    platform retries on timeouts and errors; a replayed success must change nothing). Deliveries
    start at `per_second` and alternate between the API processes in `bases`."""
    seen = Replay()
    run = secrets.token_hex(3)
    gate = asyncio.Semaphore(concurrency)
    clients = [httpx.AsyncClient(base_url=base, timeout=5.0) for base in bases]

    async def send(n: int, attempt: int) -> None:
        await asyncio.sleep(n / per_second + attempt * retry_seconds)
        async with gate:
            path, body = _request(n, run)  # signed as it leaves, as the platform does
            started = time.monotonic()
            try:
                response = await clients[n % len(clients)].post(path, content=body)
            except httpx.TimeoutException:
                seen.statuses["timeout"] += 1
                return
            except httpx.TransportError:
                seen.statuses["refused"] += 1
                return
            seen.latencies.append(time.monotonic() - started)
        seen.statuses[str(response.status_code)] += 1
        if response.status_code == 200 and response.content == b"success":
            seen.answered.add(n)

    try:
        await asyncio.gather(*(send(n, a) for n in range(deliveries) for a in range(sends)))
    finally:
        for client in clients:
            await client.aclose()
    return seen


@dataclass(frozen=True)
class Stored:
    inbox_events: int
    distinct_deliveries: int
    inquiries: int
    messages: int
    unrouted: int


def stored(database_url: str) -> Stored:
    with psycopg.connect(libpq_url(database_url)) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM inbox_event),"
            " (SELECT count(DISTINCT dedupe_key) FROM inbox_event),"
            " (SELECT count(*) FROM inquiry), (SELECT count(*) FROM inquiry_message),"
            " (SELECT count(*) FROM inquiry WHERE routed_at IS NULL)"
        ).fetchone()
    assert row is not None
    return Stored(*row)


async def wait_until_routed(database_url: str, *, within: float) -> Stored:
    """The stored figures once no inquiry waits for routing (or when time is up)."""
    started = time.monotonic()
    while True:
        try:
            figures = stored(database_url)
        except psycopg.OperationalError:
            figures = None
        if figures is not None and (figures.unrouted == 0 or time.monotonic() - started > within):
            return figures
        await asyncio.sleep(1.0)
