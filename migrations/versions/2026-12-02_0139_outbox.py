"""the outbox: one delivery per reply and recipient, and each account's shared access token

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 01:39:27.841992+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "platform_token",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("access_token", sa.String(length=1024), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("forced_today", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_platform_token_account_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_platform_token")),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("reply_id", sa.BigInteger(), nullable=False),
        sa.Column("inquiry_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.String(length=128), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sending",
                "delivered",
                "awaiting_window",
                "failed",
                "uncertain",
                name="deliverystatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_delivery_account_id"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["inquiry_id"], ["inquiry.id"], name=op.f("fk_delivery_inquiry_id"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["reply.id"], name=op.f("fk_delivery_reply_id"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("reply_id", "inquiry_id", name=op.f("uq_delivery_reply_id_inquiry_id")),
    )
    op.create_index(op.f("ix_delivery_inquiry_id"), "delivery", ["inquiry_id"], unique=False)
    op.create_index(op.f("ix_delivery_reply_id"), "delivery", ["reply_id"], unique=False)
    op.create_index(
        "ix_delivery_sending",
        "delivery",
        ["sending_at"],
        unique=False,
        postgresql_where=sa.text("status = 'sending'"),
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index(
        "ix_delivery_sending", table_name="delivery", postgresql_where=sa.text("status = 'sending'")
    )
    op.drop_index(op.f("ix_delivery_reply_id"), table_name="delivery")
    op.drop_index(op.f("ix_delivery_inquiry_id"), table_name="delivery")
    op.drop_table("delivery")
    op.drop_table("platform_token")
