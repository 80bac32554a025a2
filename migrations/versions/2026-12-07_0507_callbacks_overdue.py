"""an overdue call-back is told once: when its due passed with no outcome was noticed

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 05:07:38.632993+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    # A nullable column without a default: no table rewrite.
    op.add_column(
        "callback", sa.Column("overdue_noticed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_column("callback", "overdue_noticed_at")
