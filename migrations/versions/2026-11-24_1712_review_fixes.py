"""one active office per region; the audit trail refuses updates and deletes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 17:12:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # A deactivated office must not block its replacement.
    op.drop_index("uq_department_office_per_region", table_name="department")
    op.create_index(
        "uq_department_office_per_region",
        "department",
        ["level", "region_code"],
        unique=True,
        postgresql_where=sa.text("is_supervising_office AND active"),
    )
    # The audit trail is append-only in the database too, not only by convention.
    op.execute(
        """
        CREATE FUNCTION inquiry_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'inquiry_event is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$;
        CREATE TRIGGER inquiry_event_append_only BEFORE UPDATE OR DELETE ON inquiry_event
            FOR EACH ROW EXECUTE FUNCTION inquiry_event_append_only();
        """
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("DROP TRIGGER inquiry_event_append_only ON inquiry_event")
    op.execute("DROP FUNCTION inquiry_event_append_only")
    op.drop_index("uq_department_office_per_region", table_name="department")
    op.create_index(
        "uq_department_office_per_region",
        "department",
        ["level", "region_code"],
        unique=True,
        postgresql_where=sa.text("is_supervising_office"),
    )
