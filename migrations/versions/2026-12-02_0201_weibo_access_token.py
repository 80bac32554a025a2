"""a Weibo account's fan-service access token, for replies

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 02:01:24.563391+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("account", sa.Column("weibo_access_token", sa.String(length=256), nullable=True))


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_column("account", "weibo_access_token")
