"""The audit trail of the rules that decide where inquiries go (routing and kind rules, the
referral directory): who changed what, from what, to what."""

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from app.routing.models import RuleChange

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
