"""roles: client-system keys carry roles (existing ones answer inquiries as responders); a
person's key keeps using the person's roles

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 23:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.add_column("api_key", sa.Column("roles", postgresql.ARRAY(sa.String(length=16))))
    # Client systems have only ever answered inquiries; none of them decides for an office.
    op.execute("UPDATE api_key SET roles = ARRAY['responder'] WHERE client_name IS NOT NULL")
    op.create_check_constraint(
        "roles_only_on_client_keys", "api_key", "(client_name IS NULL) = (roles IS NULL)"
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_constraint(op.f("ck_api_key_roles_only_on_client_keys"), "api_key", type_="check")
    op.drop_column("api_key", "roles")
