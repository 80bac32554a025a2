"""The audit trail of the rules that govern inquiries (routing and kind rules, the referral
directory, deadline rules): who changed what, from what, to what. Any domain records its rule
changes here without importing another domain."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, Select, String, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db import Base


class RuleChange(Base):
    """Append-only record of every change to the rules that decide where inquiries go."""

    __tablename__ = "rule_change"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(200))
    entity: Mapped[str] = mapped_column(String(32))  # routing_rule, kind_rule, referral_entry
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # created, updated
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)  # field -> [before, after]


ADMIN = "admin"  # the bootstrap admin token is one credential, not a person
_SKIP = {"created_at", "updated_at"}


def snapshot(row: DeclarativeBase) -> dict[str, Any]:
    """A row's columns as JSON-ready values."""
    values = {}
    for column in row.__table__.columns:
        if column.key in _SKIP:
            continue
        value = getattr(row, column.key)
        values[column.key] = (
            value if isinstance(value, int | float | bool | list | None) else str(value)
        )
    return values


async def record_change(
    session: AsyncSession,
    row: DeclarativeBase,
    *,
    before: dict[str, Any] | None,
    actor: str = ADMIN,
) -> None:
    """Append what changed on `row` since `before` (None: it was created)."""
    await session.flush()
    after = snapshot(row)
    changes = {
        key: [None if before is None else before.get(key), value]
        for key, value in after.items()
        if before is None or before.get(key) != value
    }
    if changes:
        session.add(
            RuleChange(
                actor=actor,
                entity=row.__tablename__,
                entity_id=after["id"],
                action="created" if before is None else "updated",
                changes=changes,
            )
        )


def listing() -> Select[RuleChange]:
    """Newest first."""
    return select(RuleChange).order_by(RuleChange.id.desc())
