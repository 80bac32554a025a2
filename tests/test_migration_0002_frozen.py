"""Migration 0002 applies procrastinate 3.10.0's schema from a copy frozen in the repository, so a
fresh database is built the same whichever procrastinate release is installed."""

import asyncio
import hashlib
import uuid

import procrastinate
import psycopg
import pytest
from procrastinate.schema import SchemaManager

from app import db, embedded, health
from app.settings import PROJECT_ROOT

FROZEN_SCHEMA = PROJECT_ROOT / "migrations" / "frozen" / "procrastinate_3_10_0_schema.sql"
# procrastinate 3.10.0's procrastinate/sql/schema.sql, the bytes 0002 applied when it landed. The
# wheel's RECORD lists the same file as sha256=xw7EtACmCtlZJ4dlOq5a53rkG_gB1Wtb0nEnUaB_IAk.
FROZEN_SCHEMA_SHA256 = "c70ec4b400a60ad9592787653aae5ae77ae41bf801d56b5bd2712751a07f2009"


def test_the_frozen_procrastinate_schema_is_unchanged() -> None:
    # Databases migrated already hold exactly this schema; an edit would make fresh ones differ.
    assert hashlib.sha256(FROZEN_SCHEMA.read_bytes()).hexdigest() == FROZEN_SCHEMA_SHA256


async def test_0002_migrates_whatever_procrastinate_is_installed(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: 0002 refused any release but 3.10 and read the installed package's schema.sql.
    def installed_schema() -> str:
        raise AssertionError("migration 0002 read the installed procrastinate's schema")

    monkeypatch.setattr(procrastinate, "__version__", "4.0.0")
    monkeypatch.setattr(SchemaManager, "get_schema", staticmethod(installed_schema))
    name = f"govinbox_frozen_{uuid.uuid4().hex[:12]}"
    url = embedded.create_database(server_url, name)
    try:
        await asyncio.to_thread(db.migrate, url)
        with psycopg.connect(embedded.libpq_url(url)) as connection:
            versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            queue = connection.execute(
                "SELECT to_regclass('procrastinate_jobs') IS NOT NULL,"
                " to_regprocedure('procrastinate_defer_jobs_v1(procrastinate_job_to_defer_v1[])')"
                " IS NOT NULL"
            ).fetchone()
        assert {v for (v,) in versions} == set(health.migration_heads())
        assert queue == (True, True)
    finally:
        embedded.drop_database(server_url, name)
