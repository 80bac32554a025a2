"""Start-up and shutdown as an operator meets them: one-line configuration errors, the embedded
PostgreSQL stopped however `make run` ends, and `make demo` printing only what it created."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from app.embedded import create_database, drop_database, libpq_url, with_database
from tests.operations import harness

pytestmark = pytest.mark.processes


def _start(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, *args],
        cwd=harness.ROOT,
        env=clean | {"ADMIN_TOKEN": harness.ADMIN_TOKEN} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


COMMANDS = {
    "make run": ["-m", "app.serve"],
    "worker": ["-m", "app.worker"],
    "uvicorn": ["-m", "uvicorn", "app.main:create_app", "--factory", "--port", "0"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("ADMIN_TOKEN", "short-but-secret-xyz", "at least 24 characters"),
        ("ADMIN_TOKEN", "changeme", "at least 24 characters"),
        ("DATABASE_URL", "mysql://root:hunter2secret@db/govinbox", "must be a PostgreSQL URL"),
        ("DATABASE_POOL_SIZE", "many-many", "valid integer"),
    ],
)
def test_a_configuration_error_is_one_line_naming_the_setting_and_never_its_value(
    command: str, setting: str, value: str, says: str
) -> None:
    # Before: a traceback, and the one for a placeholder ADMIN_TOKEN echoed the token.
    started = _start(*COMMANDS[command], **{setting: value})
    assert started.returncode == 2, started.stderr
    assert started.stderr.strip().splitlines() == [started.stderr.strip()]
    assert started.stderr.startswith(f"configuration error: {setting}: ")
    assert says in started.stderr
    assert value not in started.stderr + started.stdout
    assert "Traceback" not in started.stderr


def test_a_server_needs_its_public_address_before_it_migrates(server_url: str) -> None:
    """Production (ALLOW_EMBEDDED_DATABASE false) without PUBLIC_BASE_URL would send citizens a
    loopback link to the answer page: it refuses to start, and changes nothing."""
    name = f"govinbox_public_{os.getpid()}"
    url = create_database(server_url, name)
    try:
        started = _start("-m", "app.serve", DATABASE_URL=url, ALLOW_EMBEDDED_DATABASE="false")
        assert started.returncode == 2, started.stderr
        assert started.stderr.strip().startswith("configuration error: PUBLIC_BASE_URL: ")
        with psycopg.connect(libpq_url(url)) as connection:
            tables = connection.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ).fetchone()
        assert tables == (0,)  # not migrated
    finally:
        drop_database(server_url, name)


@pytest.mark.parametrize("module", ["app.serve", "app.worker"])
def test_a_database_that_does_not_exist_is_named_as_such(server_url: str, module: str) -> None:
    missing = with_database(server_url, "govinbox_no_such_database")
    started = _start("-m", module, DATABASE_URL=missing, ALLOW_EMBEDDED_DATABASE="false")
    assert started.returncode == 2, started.stderr
    assert started.stderr.strip() == (
        "configuration error: DATABASE_URL: its database does not exist on the server"
    )


def _postmaster(pgdata: Path) -> int | None:
    """The pid of the PostgreSQL serving `pgdata`, if one runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _serve_then_terminate(data_dir: Path) -> None:
    """`make run`'s process (embedded PostgreSQL), up and answering, then SIGTERM to its group."""
    port = harness.free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DATABASE_"))}
    serving = subprocess.Popen(
        [sys.executable, "-m", "app.serve"],
        cwd=harness.ROOT,
        env=clean | {"DATA_DIR": str(data_dir), "PORT": str(port), "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("make run's server did not become ready")
        assert _postmaster(data_dir / "pgdata") is not None
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=60)
    finally:
        if serving.poll() is None:
            os.killpg(serving.pid, signal.SIGKILL)


def test_sigterm_to_make_run_stops_the_embedded_postgresql_even_after_a_killed_run(
    tmp_path: Path,
) -> None:
    # Before: uvicorn re-raised SIGTERM after its shutdown and the process died before pgserver's
    # clean-up; and a pid left in pgserver's list by a killed run kept it running ever after.
    data_dir = tmp_path / "var"
    pgdata = data_dir / "pgdata"
    try:
        _serve_then_terminate(data_dir)
        assert _postmaster(pgdata) is None
        # A run that was killed outright left its pid in pgserver's list of users.
        (pgdata / ".handle_pids.json").write_text(json.dumps([2**22 + 12345]))
        _serve_then_terminate(data_dir)
        assert _postmaster(pgdata) is None
    finally:
        if (left := _postmaster(pgdata)) is not None:
            os.kill(left, signal.SIGTERM)  # never leave a server behind a failed test


def test_make_demo_prints_secrets_only_for_accounts_it_created(server_url: str) -> None:
    # Before: any created account printed both accounts' secrets, made up for one that existed.
    name = f"govinbox_demo_{os.getpid()}"
    with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    try:
        first = _start("-m", "app.demo", DATABASE_URL=url)
        assert first.returncode == 0, first.stderr
        assert "hefei-wechat: token" in first.stderr
        assert "hefei-weibo: app secret" in first.stderr
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            connection.execute("DELETE FROM account WHERE code = 'hefei-weibo'")
        second = _start("-m", "app.demo", DATABASE_URL=url)
        assert second.returncode == 0, second.stderr
        assert "hefei-weibo: app secret" in second.stderr
        assert "hefei-wechat" not in second.stderr
        third = _start("-m", "app.demo", DATABASE_URL=url)
        assert "secret" not in third.stderr.replace("their secrets were shown", "")
    finally:
        with psycopg.connect(libpq_url(server_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
