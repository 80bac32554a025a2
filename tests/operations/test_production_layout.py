"""The README's production layout, exactly as written: `alembic upgrade head`, the API under
uvicorn with several workers, and `python -m app.worker` apart; a message goes webhook → worker →
department API.

Before: run as a module, `app/worker.py` was `__main__`, the tasks registered on a second App and
every job failed "Task not found"; nothing was routed.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from app.embedded import create_database, drop_database, libpq_url
from tests.operations import harness
from tests.operations.harness import Processes

pytestmark = pytest.mark.processes


@pytest.fixture
def processes(server_url: str, tmp_path: Path) -> Iterator[Processes]:
    name = f"govinbox_layout_{secrets.token_hex(4)}"
    running = Processes(tmp_path, create_database(server_url, name))
    yield running
    running.stop()
    drop_database(server_url, name)


async def test_alembic_then_api_and_worker_as_separate_processes_route_a_message(
    processes: Processes,
) -> None:
    port = harness.free_port()
    processes.run("-m", "alembic", "upgrade", "head")
    api = ["-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1"]
    processes.start("api", *api, "--port", str(port), "--workers", "2")
    metrics_port = harness.free_port()
    processes.start("worker", "-m", "app.worker", WORKER_METRICS_PORT=str(metrics_port))
    base = f"http://127.0.0.1:{port}"
    await harness.wait_until_ready(base)
    await harness.set_up_account(base)
    seen = await harness.replay([base], 1, per_second=1.0, sends=1)
    assert seen.answered == {0}, seen.statuses
    figures = await harness.wait_until_routed(processes.env["DATABASE_URL"], within=30.0)
    assert figures == harness.Stored(1, 1, 1, 1, 0), (figures, processes.log("worker")[-3000:])
    with psycopg.connect(libpq_url(processes.env["DATABASE_URL"])) as connection:
        row = connection.execute("SELECT reference FROM inquiry").fetchone()
        # alembic creates the calendar's tables; the worker seeded them when it started.
        seeded = connection.execute("SELECT count(*) FROM calendar_year").fetchone()
    assert row is not None
    assert seeded is not None
    assert seeded[0] > 20
    admin = {"Authorization": f"Bearer {harness.ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=10) as client:
        issued = await client.post(
            "/admin/departments/ops-office/api-keys", json={"client_name": "ops"}, headers=admin
        )
        assert issued.status_code == 201, issued.text
        key = {"Authorization": f"Bearer {issued.json()['key']}"}
        inquiry = await client.get(f"/inquiries/{row[0]}", headers=key)
        worker_metrics = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert inquiry.status_code == 200, inquiry.text
    assert inquiry.json()["status"] == "assigned"
    assert processes.alive() == {"api": True, "worker": True}
    assert "govinbox_worker_restarts_total" in worker_metrics.text
