"""The service rides out a database outage and a killed worker, as real processes.

Before: the job worker's failed fetch made `app.serve` stop uvicorn on purpose, and the process
exited about a second after the database came back (`python -m app.worker` exited the same way);
the platform's retries then met a closed port.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operations import harness
from tests.operations.harness import Cluster, Processes

pytestmark = pytest.mark.processes

DELIVERIES = 200
PER_SECOND = 25.0  # deliveries over 8 s, each sent 4 times over 15 s more
# The worker recovers jobs a lost run left `doing` once their heartbeat is stale (30 s) and the
# minute's sweep runs: routing may finish up to about two minutes after the outage.
ROUTED_WITHIN = 150.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with harness.cluster(tmp_path_factory.mktemp("cluster")) as cluster:
        yield cluster


@pytest.fixture
def processes(server: Cluster, tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path, server.new_database())
    yield running
    running.stop()


async def _outage(server: Cluster, seconds: float) -> float:
    """Stop PostgreSQL as a crash would, start it again `seconds` later; when it was back."""
    await asyncio.sleep(3.0)
    await asyncio.to_thread(server.stop, "immediate")
    await asyncio.sleep(seconds)
    await asyncio.to_thread(server.start)
    return asyncio.get_running_loop().time()


async def _check(
    processes: Processes, seen: harness.Replay, *, database_url: str, names: list[str]
) -> None:
    assert processes.alive() == dict.fromkeys(names, True), {
        name: processes.log(name)[-3000:] for name in names
    }
    print(seen.statuses, f"p99 {seen.p99():.3f} s")  # shown with -s
    assert seen.statuses["500"] == 0, seen.statuses
    assert seen.statuses["503"] > 0, seen.statuses  # the outage was real: some answers were 503
    figures = await harness.wait_until_routed(database_url, within=ROUTED_WITHIN)
    # Every delivery stored once (none lost, none twice), one inquiry and one message each.
    assert figures == harness.Stored(DELIVERIES, DELIVERIES, DELIVERIES, DELIVERIES, 0), (
        figures,
        seen.statuses,
    )
    assert seen.answered == set(range(DELIVERIES))


async def test_make_run_layout_survives_a_database_restart(
    server: Cluster, processes: Processes
) -> None:
    port = harness.free_port()
    processes.start("serve", "-m", "app.serve", PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    await harness.wait_until_ready(base)
    await harness.set_up_account(base)
    load = asyncio.create_task(harness.replay([base], DELIVERIES, per_second=PER_SECOND))
    back_at = await _outage(server, 5.0)
    ready_after = await harness.wait_until_ready(base, within=30.0)
    assert asyncio.get_running_loop().time() - back_at < 10.0, ready_after
    seen = await load
    await _check(processes, seen, database_url=processes.env["DATABASE_URL"], names=["serve"])
    assert "job worker lost the database; starting again" in processes.log("serve")


async def test_split_layout_survives_a_database_restart_and_a_killed_worker(
    server: Cluster, processes: Processes
) -> None:
    port = harness.free_port()
    processes.run("-m", "alembic", "upgrade", "head")
    processes.start("worker", "-m", "app.worker")
    api = ["-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
    processes.start("api", *api, "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    await harness.wait_until_ready(base)
    await harness.set_up_account(base)
    load = asyncio.create_task(harness.replay([base], DELIVERIES, per_second=PER_SECOND))
    back_at = await _outage(server, 5.0)
    await harness.wait_until_ready(base, within=30.0)
    assert asyncio.get_running_loop().time() - back_at < 10.0
    # The worker noticed (a failed heartbeat or fetch stops it; it lets its running jobs finish
    # for up to 10 s, then starts again): wait for that before killing it, or the kill can land
    # in its graceful stop and the restart is never logged.
    for _ in range(300):
        if "job worker lost the database; starting again" in processes.log("worker"):
            break
        await asyncio.sleep(0.1)
    # Then the worker dies outright mid-run (SIGKILL) and is started again.
    await asyncio.sleep(2.0)
    processes.kill("worker")
    processes.start("worker", "-m", "app.worker")
    seen = await load
    await _check(
        processes, seen, database_url=processes.env["DATABASE_URL"], names=["worker", "api"]
    )
    assert "job worker lost the database; starting again" in processes.log("worker")
