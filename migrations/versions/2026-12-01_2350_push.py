"""push notifications: a department's webhook registration, its secret and its feed cursor

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 23:50:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE TABLE push_registration (
    id serial CONSTRAINT pk_push_registration PRIMARY KEY,
    department_id integer NOT NULL
        CONSTRAINT fk_push_registration_department_id REFERENCES department (id) ON DELETE RESTRICT
        CONSTRAINT uq_push_registration_department_id UNIQUE,
    url varchar(2048) NOT NULL,
    -- Kept as is, not hashed: every notification is signed with it.
    secret varchar(64) NOT NULL,
    -- The last inquiry_change (xact, id) notified; a new registration starts at the oldest
    -- transaction still in flight.
    cursor_xact xid8 NOT NULL DEFAULT pg_snapshot_xmin(pg_current_snapshot()),
    cursor_id bigint NOT NULL DEFAULT 0,
    last_success_at timestamptz,
    last_failure_at timestamptz,
    last_error text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE push_registration;
"""


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute(DOWNGRADE)
