"""what the accounts publish (events and the daily pull; unknown flagged), and comments on
their articles as inquiries of their own

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 03:50:13.393057+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "publication",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("platform_id", sa.String(length=128), nullable=False),
        sa.Column("item_index", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("title", sa.Text(), server_default="", nullable=False),
        sa.Column("url", sa.Text(), server_default="", nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("original", sa.Boolean(), nullable=True),
        sa.Column("repost_of", sa.Text(), nullable=True),
        sa.Column("msg_data_id", sa.String(length=64), nullable=True),
        sa.Column("comments_seen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("comments_polled_at", sa.DateTime(timezone=True), nullable=True),
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
            ["account_id"],
            ["account.id"],
            name=op.f("fk_publication_account_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publication")),
        sa.UniqueConstraint(
            "account_id",
            "platform_id",
            "item_index",
            name=op.f("uq_publication_account_id_platform_id_item_index"),
        ),
    )
    op.create_table(
        "comment",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("publication_id", sa.BigInteger(), nullable=True),
        sa.Column("platform_post_id", sa.String(length=64), nullable=True),
        sa.Column("inquiry_id", sa.BigInteger(), nullable=False),
        sa.Column("platform_comment_id", sa.String(length=64), nullable=False),
        sa.Column("commented_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inquiry_id"], ["inquiry.id"], name=op.f("fk_comment_inquiry_id"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publication.id"],
            name=op.f("fk_comment_publication_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comment")),
        sa.UniqueConstraint("inquiry_id", name=op.f("uq_comment_inquiry_id")),
        sa.UniqueConstraint(
            "publication_id",
            "platform_comment_id",
            name=op.f("uq_comment_publication_id_platform_comment_id"),
        ),
    )
    op.create_table(
        "comment_feed",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("feed", sa.String(length=16), nullable=False),
        sa.Column("since_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["account.id"],
            name=op.f("fk_comment_feed_account_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "feed", name=op.f("pk_comment_feed")),
    )
    op.add_column(
        "account",
        sa.Column(
            "comments_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.add_column(
        "account", sa.Column("publications_checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("account", sa.Column("publications_error", sa.Text(), nullable=True))


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_column("account", "publications_error")
    op.drop_column("account", "publications_checked_at")
    op.drop_column("account", "comments_enabled")
    op.drop_table("comment_feed")
    op.drop_table("comment")
    op.drop_table("publication")
