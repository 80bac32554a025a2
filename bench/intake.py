"""Webhook intake benchmark (issue #4). Run by hand from the repo root, never in `make test`:

    .venv/bin/python bench/intake.py              # full run, about 4 minutes
    .venv/bin/python bench/intake.py --quick      # smoke run, about 1.5 minutes
    .venv/bin/python bench/intake.py --workers 1  # uvicorn workers for (a) and (b); default 2

(a) and (b) are driven by wrk when it is installed (`apt-get install wrk`): the Python client
spends about 1 ms of CPU per request on the same two cores as the server it measures, which
would halve (a). Without wrk, or with --python-client, an httpx client drives them.

Uses DATABASE_URL's server if set, else embedded PostgreSQL in var/pgdata-bench; either way a
fresh database govinbox_bench_<hex>, migrated, seeded and dropped at the end. Every delivery comes
from a new citizen, so each opens an inquiry and queues its routing job: the heaviest intake path.

(c) pgbench replays the request's own SQL (the webhook's account SELECT, then govinbox_intake;
    each its own transaction, as the webhook runs them in autocommit) with --protocol=prepared,
    -c CONCURRENCY -j 2, for a fixed time.
(b) uvicorn serving bench/bare_app.py: the same route answering `success` without a database.
(a) uvicorn serving the app: signed, safe-mode (AES) WeChat POSTs, closed loop at CONCURRENCY;
    (a) and (b) share the worker count, the client and the pre-generated requests; the app gets
    DATABASE_POOL_SIZE=CONCURRENCY, a connection per client.
a 250/s   (a) in open loop at a fixed 250 requests/s; latency counts from each scheduled send.
a ack on  (a) against an account whose passive acknowledgement is on (encrypted XML answers).
replay 4x every delivery of (a) posted 4 more times, its copies in flight together, re-signed
          with a fresh timestamp as WeChat's retries are; then the rows are counted.
Targets: a/c >= 0.5; p99 < 100 ms at 250/s; 0 lost and 0 duplicated. Exit status 1 if one fails.
The client shares the machine's cores with the server and PostgreSQL; see the load averages.
"""

import argparse
import asyncio
import glob
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from wechat_peer import CONTENT, BenchAccount, deliveries, message_xml, signed  # beside this file

from app import embedded
from app.accounts import service as accounts
from app.accounts.schemas import AccountCreate
from app.db import migrate
from app.departments import service as departments
from app.departments.schemas import DepartmentCreate
from app.settings import settings
from app.webhooks.service import ACCOUNT_SQL

ROOT = Path(__file__).resolve().parent.parent
RATE = 250
XML = {"Content-Type": "text/xml"}
OFFICE = {"code": "bench-office", "name": "Bench office", "level": "city", "region_code": "340100"}
Requests = Sequence[tuple[str, bytes]]  # (path with query, body)
Answer = Callable[[bytes], bool]

# One request's SQL for a new citizen each time (:client_id and a random bigint). pgbench reads
# ":name" as a variable even inside quotes, hence 'msg:' || 'o…'.
PGBENCH = f"""\\set r random(1, 9000000000000000000)
{{lookup}};
SELECT * FROM govinbox_intake({{account}}, 'wechat',
    'msg:' || 'oPgbench' || :client_id::text || '-' || :r::text || ':' || :r::text,
    'oPgbench' || :client_id::text || '-' || :r::text, 'text',
    NULL, now(), '{{payload}}', '{CONTENT}', :r::text, 'private_message', now(), interval '7 days',
    interval '20 seconds', NULL, extract(epoch FROM now())::bigint::text, '461056294', NULL,
    interval '7 days', NULL);
"""
COUNTS = """
SELECT (SELECT count(*) FROM inbox_event WHERE account_id = ANY(%(ids)s)),
       (SELECT count(*) FROM inquiry WHERE account_id = ANY(%(ids)s)),
       (SELECT count(*) FROM inquiry_message m JOIN inquiry i ON i.id = m.inquiry_id
         WHERE i.account_id = ANY(%(ids)s)),
       (SELECT count(*) FROM procrastinate_jobs j JOIN inquiry i
            ON i.id = (j.args->>'inquiry_id')::bigint
         WHERE j.task_name = 'route_inquiry' AND i.account_id = ANY(%(ids)s))
"""


@dataclass
class Result:
    phase: str
    latencies: list[float]  # seconds
    seconds: float = 0.0
    errors: int = 0
    summary: tuple[int, dict[float, float]] | None = None  # wrk's: requests, {quantile: ms}

    @property
    def count(self) -> int:
        return self.summary[0] if self.summary else len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: float) -> float:
        if self.summary:
            return self.summary[1][q]
        ordered = sorted(self.latencies)
        return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))] * 1000


async def seed(url: str, codes: Sequence[str]) -> dict[str, BenchAccount]:
    """A department and one WeChat account per code, made by our own services."""
    engine = create_async_engine(url, poolclass=NullPool)
    made = {}
    async with async_sessionmaker(engine).begin() as session:
        await departments.create(session, data=DepartmentCreate.model_validate(OFFICE))
        for code in codes:
            bench = BenchAccount.random(code)
            data = {
                "code": code,
                "platform": "wechat",
                "account_type": "wechat_service",
                "display_name": code,
                "department_code": OFFICE["code"],
                "wechat_original_id": bench.original_id,
                "wechat_app_id": bench.app_id,
                "wechat_token": bench.token,
                "wechat_encoding_aes_key": bench.encoding_aes_key,
            }
            account = await accounts.create(session, data=AccountCreate.model_validate(data))
            account.ack_enabled = code.endswith("-ack")
            await session.flush()
            made[code] = replace(bench, id=account.id)
    await engine.dispose()
    return made


def is_success(body: bytes) -> bool:
    return body == b"success"


def is_encrypted_reply(body: bytes) -> bool:
    return body.startswith(b"<xml>") and b"<Encrypt>" in body


class Clients:
    """One httpx client per connection: one shared pool of 32 ran at a third of its rate at 8."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        self.idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for _ in range(concurrency):
            limits = httpx.Limits(max_connections=1)
            self.idle.put_nowait(httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30))

    async def post(
        self, result: Result, path: str, body: bytes, since: float, ok: Answer = is_success
    ) -> None:
        """Post on the next idle connection; record the latency since `since` and any error."""
        client = await self.idle.get()
        try:
            response = await client.post(path, content=body, headers=XML)
            good = response.status_code == 200 and ok(response.content)
        except httpx.HTTPError:
            good = False
        finally:
            self.idle.put_nowait(client)
        result.latencies.append(time.perf_counter() - since)
        result.errors += not good

    async def aclose(self) -> None:
        while not self.idle.empty():
            await self.idle.get_nowait().aclose()


async def closed_loop(
    clients: Clients, phase: str, requests: Requests, concurrency: int, ok: Answer = is_success
) -> Result:
    """Each of `concurrency` senders posts its next request as soon as the last one answers."""
    result, queue = Result(phase, []), iter(requests)

    async def sender() -> None:
        for path, body in queue:  # shared: each request is taken once
            await clients.post(result, path, body, time.perf_counter(), ok)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(clients: Clients, phase: str, requests: Requests, rate: float) -> Result:
    """Send at fixed intervals whatever the answers do; latency counts from the scheduled time."""
    result, tasks, start = Result(phase, []), [], time.perf_counter() + 0.01
    for i, (path, body) in enumerate(requests):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(clients.post(result, path, body, due)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    return result


# wrk (C, from Debian's package) drives the closed-loop phases when it is installed: the Python
# client spends about 1 ms of CPU per request on the same two cores as the server it measures.
WRK_SCRIPT = """
local lines, i, step = {}, 0, 1
function setup(thread)
  thread:set("first", setup_count or 0)
  setup_count = (setup_count or 0) + 1
end
function init(args)
  step = tonumber(args[2])
  local n = 0
  for line in io.lines(args[1]) do
    if n % step == first then
      local path, body = line:match("([^\t]*)\t(.*)")
      lines[#lines + 1] = wrk.format("POST", path, {["Content-Type"] = "text/xml"}, body)
    end
    n = n + 1
  end
end
function request()
  i = i % #lines + 1  -- past the end it starts again: the same deliveries, as retries
  return lines[i]
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk_loop(
    base: str, phase: str, requests: Requests, concurrency: int, seconds: int, tmp: Path
) -> Result:
    """A closed loop at `concurrency` connections for `seconds`, driven by wrk."""
    data, script = tmp / f"{phase.replace(' ', '_')}.tsv", tmp / "requests.lua"
    data.write_text("".join(f"{path}\t{body.decode()}\n" for path, body in requests))
    script.write_text(WRK_SCRIPT)
    threads = 2
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
    command += ["-s", str(script), base, "--", str(data), str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    total = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    elapsed = float(re.search(r"requests in ([\d.]+)s", out)[1])  # type: ignore[index]
    quantiles = {
        int(q) / 100: float(value) * _UNITS[unit]
        for q, value, unit in re.findall(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)", out, re.M)
    }
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(bad[1]) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return Result(phase, [], elapsed, failures, (total, quantiles))


@contextmanager
def uvicorn(target: str, workers: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """Serve `target` in a uvicorn subprocess until the block ends; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"--host 127.0.0.1 --port {port} --workers {workers} --log-level warning"
    command = [sys.executable, "-m", "uvicorn", *target.split(), *options.split()]
    with log.open("ab") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        for _ in range(300):
            if server.poll() is not None:
                raise RuntimeError(f"{target} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{target} did not answer /healthz in 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def pgbench_binary() -> str:
    import pgserver  # only to find its bundled binaries

    found = shutil.which("pgbench") or max(
        glob.glob("/usr/lib/postgresql/*/bin/pgbench"), default=""
    )
    return found or str(Path(pgserver.__file__).parent / "pginstall/bin/pgbench")


def pgbench(url: str, account: BenchAccount, clients: int, seconds: int, tmp: Path) -> Result:
    """(c): the request's SQL, each transaction for a new citizen, straight from pgbench."""
    # The webhook's own account query (app/webhooks/service.py), with its parameters filled in.
    sql = ACCOUNT_SQL.replace("%(code)s", f"'{account.code}'").replace("%(platform)s", "'wechat'")
    payload = message_xml(account, "oPgbench" + "0" * 20, 24_000_000_000_000_000)  # as stored
    script = tmp / "intake.sql"
    script.write_text(
        PGBENCH.format(lookup=" ".join(sql.split()), account=account.id, payload=payload)
    )
    options = f"-n --protocol=prepared -c {clients} -j 2 -T {seconds} --log".split()
    command = [pgbench_binary(), *options, f"--log-prefix={tmp / 'pgbench'}", "-f", str(script)]
    done = subprocess.run(
        [*command, embedded.libpq_url(url)], capture_output=True, text=True, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stdout[-1000:]} {done.stderr[-2000:]}")
    latencies = [  # per-transaction log lines: client, transaction, latency in µs, …
        int(line.split()[2]) / 1e6
        for log in glob.glob(f"{tmp / 'pgbench'}.*")
        for line in Path(log).read_text().splitlines()
    ]
    tps = float(re.search(r"tps = ([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    return Result("c pgbench", latencies, len(latencies) / tps, int(failed[1]) if failed else 0)


def count_rows(url: str, accounts: Sequence[BenchAccount], expected: set[str]) -> tuple[int, int]:
    """(lost, duplicated) over inbox_event, inquiry, inquiry_message and the routing jobs."""
    ids = {"ids": [account.id for account in accounts]}
    with psycopg.connect(embedded.libpq_url(url)) as db:
        rows = db.execute("SELECT sender_id FROM inbox_event WHERE account_id = ANY(%(ids)s)", ids)
        stored = {row[0] for row in rows}
        counts = db.execute(COUNTS, ids).fetchone() or (0, 0, 0, 0)
    names = ("inbox_event", "inquiry", "inquiry_message", "route_inquiry jobs")
    listed = ", ".join(f"{name} {n}" for name, n in zip(names, counts, strict=True))
    print(f"rows: {listed}; expected {len(expected)} of each (one per delivery and citizen)")
    lost = len(expected - stored) + sum(max(0, len(expected) - n) for n in counts[1:])
    duplicated = len(stored - expected) + sum(max(0, n - len(expected)) for n in counts)
    return lost, duplicated


def describe(url: str, source: str, args: argparse.Namespace) -> str:
    with psycopg.connect(embedded.libpq_url(url)) as db:
        version = (db.execute("SHOW server_version").fetchone() or ("?",))[0]
    client = "wrk" if shutil.which("wrk") and not args.python_client else "httpx"
    return (
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; Python"
        f" {platform.python_version()}; PostgreSQL {version} ({source}); uvicorn workers"
        f" {args.workers}; concurrency {args.concurrency}; {pgbench_binary()} --protocol=prepared;"
        f" client for (a) and (b): {client}"
    )


async def run(args: argparse.Namespace, url: str, source: str, tmp: Path) -> bool:
    n = args.concurrency
    count, rate_seconds, pg_seconds = (1000, 5, 5) if args.quick else (6000, 20, 20)
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    if use_wrk:  # as many deliveries as the phase could take, so none is sent twice
        count = 1500 * pg_seconds
    made = await seed(url, ["bench-wechat", "bench-wechat-ack", "bench-pgbench"])
    main, ack = made["bench-wechat"], made["bench-wechat-ack"]
    print("machine:", describe(url, source, args), flush=True)
    results = [pgbench(url, made["bench-pgbench"], n, pg_seconds, tmp)]
    warm, batch = deliveries(main, 2 * n), deliveries(main, count)
    env = os.environ | {"DATABASE_URL": url, "ADMIN_TOKEN": secrets.token_urlsafe(32)}
    env["DATABASE_POOL_SIZE"] = str(n)  # a connection per concurrent client: no overflow churn

    async def loop(base: str, clients: Clients, phase: str, requests: Requests) -> Result:
        if use_wrk and phase != "warm-up":
            return await asyncio.to_thread(wrk_loop, base, phase, requests, n, pg_seconds, tmp)
        return await closed_loop(clients, phase, requests, n)

    with uvicorn("--app-dir bench bare_app:app", args.workers, env, tmp / "bare.log") as base:
        clients = Clients(base, n)
        await closed_loop(clients, "warm-up", signed(main, warm), n)
        results.append(await loop(base, clients, "b bare", signed(main, batch)))
        await clients.aclose()
    with uvicorn("app.main:create_app --factory", args.workers, env, tmp / "app.log") as base:
        clients = Clients(base, n)
        results.append(await closed_loop(clients, "warm-up", signed(main, warm), n))
        results.append(await loop(base, clients, "a app", signed(main, batch)))
        paced = deliveries(main, RATE * rate_seconds)
        results.append(await open_loop(clients, "a 250/s", signed(main, paced), RATE))
        acked = deliveries(ack, count // 4)
        reply = signed(ack, acked)
        results.append(await closed_loop(clients, "a ack on", reply, n, is_encrypted_reply))
        copies = [d for d in warm + batch for _ in range(4)]  # each one's copies side by side
        results.append(await closed_loop(clients, "replay 4x", signed(main, copies), n))
        await clients.aclose()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    everyone = {d.sender for d in warm + batch + paced + acked}
    return report(results, *count_rows(url, [main, ack], everyone))


def report(results: list[Result], lost: int, duplicated: int) -> bool:
    """The table, then each target with PASS or FAIL."""
    print(f"\n{'phase':<11}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}")
    for r in results:
        if r.phase != "warm-up":
            print(
                f"{r.phase:<11}{r.count:>9}{r.rate:>8.0f}{r.percentile(0.5):>8.1f}"
                f"{r.percentile(0.99):>8.1f}{r.errors:>7}"
            )
    phase = {r.phase: r for r in results}
    a, b, c, paced = phase["a app"], phase["b bare"], phase["c pgbench"], phase["a 250/s"]
    verdicts = {
        f"a/c = {a.rate / c.rate:.2f} (target >= 0.5)": a.rate / c.rate >= 0.5,
        f"a/b = {a.rate / b.rate:.2f} (no target)": True,
        f"at 250/s: {paced.rate:.0f}/s achieved, p99 {paced.percentile(0.99):.1f} ms (target"
        " < 100 ms)": paced.percentile(0.99) < 100 and paced.rate >= 0.95 * RATE,
        f"after the 4x replay: lost={lost} duplicated={duplicated}": lost == duplicated == 0,
        "every request answered 200 as expected": not any(r.errors for r in results),
    }
    print()
    for line, passed in verdicts.items():
        print(f"{'PASS' if passed else 'FAIL'}  {line}")
    return all(verdicts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="about 30 s instead of 3 minutes")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for (a) and (b)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients in (a), (b), (c)")
    parser.add_argument(
        "--python-client",
        action="store_true",
        help="drive (a) and (b) with httpx even if wrk is here",
    )
    args = parser.parse_args()
    server, source = settings().database_url, "DATABASE_URL"
    if server is None:
        server, source = embedded.start(ROOT / "var/pgdata-bench"), "embedded pgserver"
    name = f"govinbox_bench_{secrets.token_hex(6)}"
    url = embedded.create_database(server, name)
    try:
        migrate(url)
        with tempfile.TemporaryDirectory(prefix="govinbox-bench-") as tmp:
            passed = asyncio.run(run(args, url, source, Path(tmp)))
    finally:
        embedded.drop_database(server, name)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
