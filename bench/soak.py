"""Soak: the production layout under replayed load, through a database restart and a killed worker.

Two API processes (uvicorn) and two job workers (`python -m app.worker`) on a PostgreSQL cluster
of this run's own (never DATABASE_URL's server). 20,000 WeChat deliveries, each from a new
citizen and each sent 4 times, 5 s apart, as the platform retries; a third of the way in,
PostgreSQL is stopped (immediate, like a crash) for 5 s and started again; two thirds in, one
worker is killed (SIGKILL) and started again. Then it waits until every inquiry is routed and
counts what was stored. 50 new deliveries a second (200 requests a second with the replays):
the Python client shares the machine's two cores with everything it measures.

    .venv/bin/python bench/soak.py                 # about 10 minutes
    .venv/bin/python bench/soak.py --deliveries 2000 --per-second 50   # a smoke run

Prints sent, stored, lost, duplicated, the answers by status, p99, and PASS/FAIL: 0 lost, 0
duplicated, no 500, every process alive, every inquiry routed, /readyz 200 within 10 s of the
restart. The small version of this runs in the suite (tests/operations/test_outage.py).
"""

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' harness

from tests.operations import harness


async def soak(deliveries: int, per_second: float, folder: Path) -> bool:
    with harness.cluster(folder) as server:
        processes = harness.Processes(folder, server.new_database())
        try:
            return await _run(server, processes, deliveries, per_second)
        finally:
            processes.stop()


async def _run(
    server: harness.Cluster, processes: harness.Processes, deliveries: int, per_second: float
) -> bool:
    loop = asyncio.get_running_loop()
    processes.run("-m", "alembic", "upgrade", "head")
    ports = [harness.free_port(), harness.free_port()]
    for n, port in enumerate(ports, 1):
        api = ["-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
        processes.start(f"api-{n}", *api, "--port", str(port), "--no-access-log")
    for n in (1, 2):
        processes.start(f"worker-{n}", "-m", "app.worker")
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for base in bases:
        await harness.wait_until_ready(base)
    await harness.set_up_account(bases[0])
    sending = deliveries / per_second
    print(f"sending {deliveries} deliveries x{harness.SENDS} over {sending:.0f} s ...")
    started = loop.time()
    load = asyncio.create_task(harness.replay(bases, deliveries, per_second=per_second))

    await asyncio.sleep(sending / 3)
    print(f"{loop.time() - started:6.1f} s: PostgreSQL stopped (immediate)")
    await asyncio.to_thread(server.stop, "immediate")
    await asyncio.sleep(5.0)
    await asyncio.to_thread(server.start)
    back = loop.time()
    print(f"{back - started:6.1f} s: PostgreSQL started again")
    ready = [await harness.wait_until_ready(base, within=60.0) for base in bases]
    ready_after = loop.time() - back
    print(f"{loop.time() - started:6.1f} s: /readyz 200 on both APIs, {ready_after:.1f} s after")

    await asyncio.sleep(max(0.0, started + 2 * sending / 3 - loop.time()))
    processes.kill("worker-1")
    print(f"{loop.time() - started:6.1f} s: worker-1 killed (SIGKILL); started again")
    processes.start("worker-1", "-m", "app.worker")

    seen = await load
    print(f"{loop.time() - started:6.1f} s: all sent; waiting for routing ...")
    figures = await harness.wait_until_routed(processes.env["DATABASE_URL"], within=300.0)
    alive = processes.alive()
    lost = deliveries - figures.distinct_deliveries
    duplicated = (figures.inbox_events - figures.distinct_deliveries) + max(
        0, figures.inquiries - deliveries
    )
    sent = sum(seen.statuses.values())
    print()
    print(f"sent        {sent} requests ({deliveries} deliveries x{harness.SENDS})")
    print(f"stored      {figures.distinct_deliveries} deliveries, {figures.inquiries} inquiries,")
    print(f"            {figures.messages} messages, {figures.unrouted} not routed")
    print(f"lost        {lost}")
    print(f"duplicated  {duplicated}")
    print(f"answers     {dict(sorted(seen.statuses.items()))}")
    print(f"p99         {seen.p99() * 1000:.0f} ms")
    each = ", ".join(f"{r:.1f}" for r in ready)
    print(f"readyz      {ready_after:.1f} s after the restart (each API: {each})")
    print(f"alive       {alive}")
    checks = {
        "0 lost": lost == 0,
        "0 duplicated": duplicated == 0,
        "no 500": seen.statuses["500"] == 0,
        "every process alive": all(alive.values()),
        "every inquiry routed": figures.unrouted == 0,
        "/readyz 200 within 10 s of the restart": ready_after < 10.0,
        "every delivery answered success at least once": len(seen.answered) == deliveries,
    }
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return all(checks.values())


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress as it goes
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--per-second", type=float, default=50.0)
    parser.add_argument("--keep", action="store_true", help="keep the folder with the logs")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="govinbox-soak-"))
    ok = asyncio.run(soak(args.deliveries, args.per_second, folder))
    if args.keep or not ok:
        print(f"logs: {folder}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
