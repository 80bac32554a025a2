"""a Weibo account's own reply window, where it differs from the setting

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02 02:36:11.303617+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("account", sa.Column("weibo_window_hours", sa.Float(), nullable=True))


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_column("account", "weibo_window_hours")
