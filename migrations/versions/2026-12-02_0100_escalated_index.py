"""what was escalated to a department, a scope of its list

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 01:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_deadline_alert_escalated",
        "deadline_alert",
        ["department_id", "inquiry_id"],
        postgresql_where=sa.text("kind = 'escalation'"),
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_deadline_alert_escalated", table_name="deadline_alert")
