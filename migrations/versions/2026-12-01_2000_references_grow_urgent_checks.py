"""reference numbers grow past 999,999; urgent checks are tracked per message; failed jobs indexed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lpad() truncates to its length: from the millionth inquiry of a platform on, "1000000" became
# "100000", and new inquiries collided with old references and failed. The number now widens.
FIXED_WIDTH = "lpad(v_number::text, 6, '0')"
GROWING = "lpad(v_number::text, greatest(6, length(v_number::text)), '0')"


def _landed_intake_function() -> str:
    """govinbox_intake() as migration 0002 created it (landed migrations are never edited)."""
    path = Path(__file__).with_name("2026-11-24_1701_webhook_intake.py")
    spec = importlib.util.spec_from_file_location("govinbox_migration_0002", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    landed: str = module.INTAKE_FUNCTION
    assert landed.count(FIXED_WIDTH) == 1
    return landed.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.alter_column(
        "inquiry",
        "reference",
        existing_type=sa.String(length=20),
        type_=sa.String(length=32),
        existing_nullable=False,
    )
    op.execute(_landed_intake_function().replace(FIXED_WIDTH, GROWING))
    op.add_column(
        "inquiry_message",
        sa.Column("urgent_checked_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Messages stored before this revision were checked by the jobs of their time.
    op.execute("UPDATE inquiry_message SET urgent_checked_at = sent_at")
    op.create_index(
        "ix_inquiry_message_urgent_unchecked",
        "inquiry_message",
        ["id"],
        unique=False,
        postgresql_where=sa.text("urgent_checked_at IS NULL"),
    )
    # /metrics counts failed jobs by task on every scrape: without this, a scan of every job.
    op.execute(
        "CREATE INDEX ix_procrastinate_jobs_failed ON procrastinate_jobs (task_name)"
        " WHERE status = 'failed'"
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DROP INDEX ix_procrastinate_jobs_failed")
    op.drop_index(
        "ix_inquiry_message_urgent_unchecked",
        table_name="inquiry_message",
        postgresql_where=sa.text("urgent_checked_at IS NULL"),
    )
    op.drop_column("inquiry_message", "urgent_checked_at")
    op.execute(_landed_intake_function())
    op.alter_column(
        "inquiry",
        "reference",
        existing_type=sa.String(length=32),
        type_=sa.String(length=20),
        existing_nullable=False,
    )
