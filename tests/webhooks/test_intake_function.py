"""govinbox_intake() is SQL that repeats Python names as strings (issue 12): its current source
lives in one file, migrations/sql/govinbox_intake.sql, which the head database runs, and every
literal it shares with the code is one the code knows."""

import inspect
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import worker
from app.accounts.models import Platform
from app.deadlines.models import PauseReason, PauseStatus
from app.inquiries.models import Channel, EventAction, InquiryKind, InquiryStatus
from app.settings import PROJECT_ROOT

SOURCE = Path(PROJECT_ROOT / "migrations" / "sql" / "govinbox_intake.sql").read_text()


def _body(sql: str) -> str:
    return sql.split("$fn$", 2)[1]


async def test_the_database_runs_the_source_file(session: AsyncSession) -> None:
    running = await session.scalar(
        # The PL/pgSQL one (0017 keeps a SQL wrapper with the previous signature for a release).
        text(
            "SELECT prosrc FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
            " WHERE p.proname = 'govinbox_intake' AND l.lanname = 'plpgsql'"
        )
    )
    assert running == _body(SOURCE)


def _literals(pattern: str) -> set[str]:
    found = set(re.findall(pattern, SOURCE))
    assert found, pattern  # the pattern still finds what it checks
    return found


def test_queued_jobs_name_registered_tasks_on_a_worked_queue() -> None:
    queued = re.findall(r"ROW\('(\w+)', '(\w+)'", SOURCE)
    assert queued
    worker.app.perform_import_paths()  # the worker's own task modules, as it loads them
    registered = {task.name for task in worker.app.tasks.values()}
    for queue, task in queued:
        assert queue in worker.QUEUES
        assert task in registered
    for task in _literals(r"j\.task_name = '(\w+)'"):
        assert task in registered  # the waiting job intake moves back


def test_queued_jobs_pass_the_arguments_their_tasks_take() -> None:
    """A job's arguments are written by name in the SQL: renaming a task's parameter must fail
    here, not in production (the tests call most jobs directly)."""
    queued = re.findall(
        r"'routing', '(\w+)', 0, NULL, NULL,\s*jsonb_build_object\(([^)]*)\)", SOURCE
    )
    assert len({task for task, _ in queued}) >= 7  # every job intake queues
    worker.app.perform_import_paths()
    for task, arguments in queued:
        parameters = inspect.signature(worker.app.tasks[task].func).parameters
        taken = {name for name in parameters if name != "context"}  # pass_context
        assert set(re.findall(r"'(\w+)'\s*,", arguments)) == taken, task


def test_stored_values_are_the_enums_values() -> None:
    checks = {
        r"action, reason, details\)\s+VALUES \(v_inquiry_id, p_now, 'system:intake', '(\w+)'": (
            EventAction
        ),
        r"VALUES \(v_inquiry_id, p_now, 'system:intake', '(\w+)', '(?:new)'": EventAction,
        r"p\.reason = '(\w+)'": PauseReason,
        r"p\.status = '(\w+)'": PauseStatus,
        r"'(\w+)', 'new', p_channel = '\w+'": InquiryKind,
        r"'\w+', '(\w+)', p_channel = '\w+'": InquiryStatus,
        r"p_channel = '(\w+)'": Channel,
        r"p_platform WHEN '(\w+)'": Platform,
    }
    for pattern, enum in checks.items():
        for literal in _literals(pattern):
            assert literal in {member.value for member in enum}, (literal, enum.__name__)
    statuses = re.search(r"q\.status IN \(([^)]*)\)", SOURCE)
    assert statuses is not None
    for literal in re.findall(r"'(\w+)'", statuses.group(1)):
        assert literal in {status.value for status in InquiryStatus}
