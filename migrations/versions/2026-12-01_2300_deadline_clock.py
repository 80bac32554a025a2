"""the deadline clock: first-response dues, pauses approved by the office, alerts per clock, the
awaiting-citizen pause keeps its conversation open, intake locks without blocking key-share
locks, year recounts as jobs, an index for the sweep

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 23:00:00+00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The conversation window closes an inquiry to new messages, except while it waits for the
# citizen's material: the answer must reach the inquiry whose clock it restarts.
WINDOW = "IF v_inquiry_id IS NOT NULL AND v_last < p_now - p_open_window THEN"
WINDOW_UNLESS_AWAITED = (
    "IF v_inquiry_id IS NOT NULL AND v_last < p_now - p_open_window\n"
    "           AND NOT EXISTS (SELECT 1 FROM deadline_pause p\n"
    "                             JOIN inquiry q ON q.id = p.inquiry_id\n"
    "                            WHERE p.inquiry_id = v_inquiry_id\n"
    "                              AND p.reason = 'awaiting_citizen'\n"
    "                              AND p.status = 'running'\n"
    "                              AND q.status IN ('new', 'assigned')) THEN"
)
# Intake changes no key of the inquiry row: FOR NO KEY UPDATE does not wait on the key-share
# locks that alert and audit rows (foreign keys to the inquiry) take.
LOCK = "AND i.accepts_messages\n           FOR UPDATE;"
LOCK_NO_KEY = "AND i.accepts_messages\n           FOR NO KEY UPDATE;"


RECOUNT_EVERY_OPEN_INQUIRY = """
WITH open AS (
    SELECT count(*) AS total FROM inquiry
     WHERE deadline_unit IS NOT NULL AND status NOT IN ('closed', 'referred', 'invalid')
), run AS (
    INSERT INTO calendar_recount (year, requested_at, requested_by, status, total, done, after_id)
    SELECT NULL, now(), 'system: migration 0015 (the deadline clock)', 'running', total, 0, 0
      FROM open WHERE total > 0
    RETURNING id
)
SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('routing', 'recount_year', 0, NULL, NULL,
       jsonb_build_object('recount_id', id), NULL)::procrastinate_job_to_defer_v1])
  FROM run
"""


def _intake_function_of_0013() -> str:
    """govinbox_intake() as migration 0013 left it (landed migrations are never edited)."""
    path = Path(__file__).with_name("2026-12-01_2000_references_grow_urgent_checks.py")
    spec = importlib.util.spec_from_file_location("govinbox_migration_0013", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    landed: str = module._landed_intake_function().replace(module.FIXED_WIDTH, module.GROWING)
    assert landed.count(WINDOW) == 1
    assert landed.count(LOCK) == 1
    return landed


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    for column in (
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_rule_id", sa.Integer(), nullable=True),
        sa.Column("first_response_unit", sa.String(length=16), nullable=True),
        sa.Column("first_response_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_length", sa.Integer(), nullable=True),
        sa.Column("first_responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("urgent_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("inquiry", column)
    op.create_foreign_key(
        op.f("fk_inquiry_first_response_rule_id"),
        "inquiry",
        "deadline_rule",
        ["first_response_rule_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    # Inquiries from before this revision keep no first-response due: theirs passed long ago,
    # and setting one now would escalate every one of them at once.
    op.execute("UPDATE inquiry SET urgent_at = received_at WHERE urgent")
    op.create_index(
        "ix_inquiry_open_clock",
        "inquiry",
        ["id"],
        postgresql_where=sa.text(
            "status IN ('new', 'assigned') AND department_id IS NOT NULL"
            " AND reply_due_at IS NOT NULL"
        ),
    )

    # Pauses: asked for, approved by the office (or not), running, ended.
    op.add_column("deadline_pause", sa.Column("status", sa.String(length=16), nullable=True))
    op.add_column(
        "deadline_pause", sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("deadline_pause", sa.Column("requested_by", sa.String(200), nullable=True))
    op.add_column("deadline_pause", sa.Column("office_id", sa.Integer(), nullable=True))
    op.add_column(
        "deadline_pause", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("deadline_pause", sa.Column("decided_by", sa.String(200), nullable=True))
    op.add_column(
        "deadline_pause",
        sa.Column("decision_note", sa.Text(), server_default="", nullable=False),
    )
    op.execute(
        "UPDATE deadline_pause SET requested_at = started_at, requested_by = started_by,"
        " status = CASE WHEN ended_at IS NULL THEN 'running' ELSE 'ended' END"
    )
    for name in ("status", "requested_at", "requested_by"):
        op.alter_column("deadline_pause", name, nullable=False)
    op.alter_column("deadline_pause", "started_at", nullable=True)
    op.alter_column("deadline_pause", "started_by", nullable=True)
    op.create_foreign_key(
        op.f("fk_deadline_pause_office_id"),
        "deadline_pause",
        "department",
        ["office_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.drop_index("uq_deadline_pause_open", table_name="deadline_pause")
    op.create_index(
        "uq_deadline_pause_open",
        "deadline_pause",
        ["inquiry_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('requested', 'running')"),
    )

    # Alerts per clock: the first response and the reply each warn and escalate.
    op.add_column(
        "deadline_alert",
        sa.Column("clock", sa.String(length=16), server_default="reply", nullable=False),
    )
    op.drop_constraint("uq_deadline_alert_inquiry_id_kind_level", "deadline_alert")
    op.create_unique_constraint(
        op.f("uq_deadline_alert_inquiry_id_clock_kind_level"),
        "deadline_alert",
        ["inquiry_id", "clock", "kind", "level"],
    )

    op.create_table(
        "calendar_recount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("after_id", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_recount")),
    )

    landed = _intake_function_of_0013()
    op.execute(landed.replace(WINDOW, WINDOW_UNLESS_AWAITED).replace(LOCK, LOCK_NO_KEY))

    # Open inquiries counted before this revision (maybe on an empty calendar, with pauses
    # credited by the old rule) are counted again by the clock, in batches by the worker: a
    # recount of every open inquiry (year NULL), audited like a calendar entry's.
    op.execute(RECOUNT_EVERY_OPEN_INQUIRY)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(_intake_function_of_0013())
    op.drop_table("calendar_recount")
    op.drop_constraint("uq_deadline_alert_inquiry_id_clock_kind_level", "deadline_alert")
    op.execute("DELETE FROM deadline_alert WHERE clock <> 'reply'")
    op.create_unique_constraint(
        "uq_deadline_alert_inquiry_id_kind_level", "deadline_alert", ["inquiry_id", "kind", "level"]
    )
    op.drop_column("deadline_alert", "clock")
    op.drop_index("uq_deadline_pause_open", table_name="deadline_pause")
    # Pauses that never stopped the clock (asked for, refused) have no place in the old shape.
    op.execute("DELETE FROM deadline_pause WHERE started_at IS NULL")
    op.create_index(
        "uq_deadline_pause_open",
        "deadline_pause",
        ["inquiry_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.drop_constraint(op.f("fk_deadline_pause_office_id"), "deadline_pause")
    op.alter_column("deadline_pause", "started_at", nullable=False)
    op.alter_column("deadline_pause", "started_by", nullable=False)
    for name in (
        "decision_note",
        "decided_by",
        "decided_at",
        "office_id",
        "requested_by",
        "requested_at",
        "status",
    ):
        op.drop_column("deadline_pause", name)
    op.drop_index("ix_inquiry_open_clock", table_name="inquiry")
    op.drop_constraint(op.f("fk_inquiry_first_response_rule_id"), "inquiry")
    for name in (
        "urgent_at",
        "first_responded_at",
        "first_response_length",
        "first_response_unit",
        "first_response_from",
        "first_response_rule_id",
        "first_response_due_at",
    ):
        op.drop_column("inquiry", name)
