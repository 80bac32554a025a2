"""the department workbench: signing for, replies with review, notes, templates, merges,
idempotency keys

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 01:11:10+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.create_table(
        "reply_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
            ["department_id"],
            ["department.id"],
            name=op.f("fk_reply_template_department_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_template")),
        sa.UniqueConstraint(
            "department_id", "code", name=op.f("uq_reply_template_department_id_code")
        ),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_key.id"],
            name=op.f("fk_idempotency_key_api_key_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_key")),
        sa.UniqueConstraint("api_key_id", "key", name=op.f("uq_idempotency_key_api_key_id_key")),
    )
    op.create_table(
        "inquiry_note",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("inquiry_id", sa.BigInteger(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_inquiry_note_department_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["inquiry_id"],
            ["inquiry.id"],
            name=op.f("fk_inquiry_note_inquiry_id"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_inquiry_note_person_id"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiry_note")),
    )
    op.create_index(
        op.f("ix_inquiry_note_inquiry_id"), "inquiry_note", ["inquiry_id"], unique=False
    )
    op.add_column(
        "department",
        sa.Column(
            "published_contacts",
            postgresql.ARRAY(sa.String(length=64)),
            server_default="{}",
            nullable=False,
        ),
    )
    op.add_column("inquiry", sa.Column("merged_into_id", sa.BigInteger(), nullable=True))
    op.add_column("inquiry", sa.Column("merged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "inquiry",
        sa.Column(
            "merged_from_status",
            sa.Enum(
                "new",
                "assigned",
                "replied",
                "closed",
                "referred",
                "invalid",
                "merged",
                name="inquirystatus",
                native_enum=False,
                length=16,
            ),
            nullable=True,
        ),
    )
    op.create_foreign_key(
        op.f("fk_inquiry_merged_into_id"),
        "inquiry",
        "inquiry",
        ["merged_into_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.add_column(
        "inquiry_assignment", sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "inquiry_assignment", sa.Column("signed_by_person_id", sa.Integer(), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_inquiry_assignment_signed_by_person_id"),
        "inquiry_assignment",
        "person",
        ["signed_by_person_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.add_column(
        "reply",
        sa.Column(
            "given_via",
            sa.Enum(
                "platform",
                "phone",
                "letter",
                "in_person",
                name="givenvia",
                native_enum=False,
                length=16,
            ),
            server_default="platform",
            nullable=False,
        ),
    )
    op.add_column("reply", sa.Column("given_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reply", sa.Column("given_by", sa.String(length=200), nullable=True))
    op.add_column("reply", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reply", sa.Column("reviewed_by", sa.String(length=200), nullable=True))
    op.add_column("reply", sa.Column("reviewer_person_id", sa.Integer(), nullable=True))
    op.add_column("reply", sa.Column("review_note", sa.Text(), server_default="", nullable=False))
    op.alter_column(
        "reply",
        "status",
        existing_type=sa.VARCHAR(length=16),
        type_=sa.Enum(
            "awaiting_approval",
            "rejected",
            "queued",
            "given",
            name="replystatus",
            native_enum=False,
            length=24,
        ),
        existing_nullable=False,
    )
    op.create_foreign_key(
        op.f("fk_reply_reviewer_person_id"),
        "reply",
        "person",
        ["reviewer_person_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])
    op.create_index(
        "ix_inquiry_merged_into_id",
        "inquiry",
        ["merged_into_id"],
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.drop_index("ix_inquiry_merged_into_id", table_name="inquiry")
    op.drop_index("ix_idempotency_key_created_at", table_name="idempotency_key")
    op.drop_constraint(op.f("fk_reply_reviewer_person_id"), "reply", type_="foreignkey")
    op.alter_column(
        "reply",
        "status",
        existing_type=sa.Enum(
            "awaiting_approval",
            "rejected",
            "queued",
            "given",
            name="replystatus",
            native_enum=False,
            length=24,
        ),
        type_=sa.VARCHAR(length=16),
        existing_nullable=False,
    )
    op.drop_column("reply", "review_note")
    op.drop_column("reply", "reviewer_person_id")
    op.drop_column("reply", "reviewed_by")
    op.drop_column("reply", "reviewed_at")
    op.drop_column("reply", "given_by")
    op.drop_column("reply", "given_at")
    op.drop_column("reply", "given_via")
    op.drop_constraint(
        op.f("fk_inquiry_assignment_signed_by_person_id"), "inquiry_assignment", type_="foreignkey"
    )
    op.drop_column("inquiry_assignment", "signed_by_person_id")
    op.drop_column("inquiry_assignment", "signed_at")
    op.drop_constraint(op.f("fk_inquiry_merged_into_id"), "inquiry", type_="foreignkey")
    op.drop_column("inquiry", "merged_from_status")
    op.drop_column("inquiry", "merged_at")
    op.drop_column("inquiry", "merged_into_id")
    op.drop_column("department", "published_contacts")
    op.drop_index(op.f("ix_inquiry_note_inquiry_id"), table_name="inquiry_note")
    op.drop_table("inquiry_note")
    op.drop_table("idempotency_key")
    op.drop_table("reply_template")
