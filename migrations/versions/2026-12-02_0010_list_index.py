"""the list's keyset pages over a department's work still to do, and its next first-response
breach

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 00:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_index(
        "ix_inquiry_department_work",
        "inquiry",
        ["department_id", "reply_due_at", "id"],
        postgresql_where=sa.text("status IN ('new', 'assigned', 'replied')"),
    )
    op.create_index(
        "ix_inquiry_department_first_response",
        "inquiry",
        ["department_id", "first_response_due_at"],
        postgresql_where=sa.text("status IN ('new', 'assigned') AND first_responded_at IS NULL"),
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_inquiry_department_first_response", table_name="inquiry")
    op.drop_index("ix_inquiry_department_work", table_name="inquiry")
