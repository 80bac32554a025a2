"""a query code for every inquiry that was there before 0027, in batches; then NOT NULL

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 03:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
# Each batch commits on its own: a row is locked only for its batch, and intake (which locks an
# inquiry to append a message) waits at most that long. Run again after a failure, it goes on
# where it stopped.
FILL = sa.text(
    "UPDATE inquiry SET query_code = govinbox_query_code()"
    " WHERE id IN (SELECT id FROM inquiry WHERE query_code IS NULL ORDER BY id LIMIT :batch)"
)
# NOT NULL without a scan under the exclusive lock: a validated check proves it first.
NOT_NULL = [
    "ALTER TABLE inquiry DROP CONSTRAINT IF EXISTS ck_inquiry_query_code_filled",
    "ALTER TABLE inquiry ADD CONSTRAINT ck_inquiry_query_code_filled"
    " CHECK (query_code IS NOT NULL) NOT VALID",
    "ALTER TABLE inquiry VALIDATE CONSTRAINT ck_inquiry_query_code_filled",
    "ALTER TABLE inquiry ALTER COLUMN query_code SET NOT NULL",
    "ALTER TABLE inquiry DROP CONSTRAINT ck_inquiry_query_code_filled",
]


def upgrade() -> None:
    with op.get_context().autocommit_block():
        while op.get_bind().execute(FILL, {"batch": BATCH}).rowcount:
            pass
    op.execute("SET LOCAL lock_timeout = '5s'")
    for statement in NOT_NULL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE inquiry ALTER COLUMN query_code DROP NOT NULL")
