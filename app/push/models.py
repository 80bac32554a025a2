from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Timestamped
from app.inquiries.models import Xid8

if TYPE_CHECKING:
    from app.departments.models import Department


class PushRegistration(Timestamped, Base):
    """A department's webhook: where "poll now" notifications go, signed with its secret."""

    __tablename__ = "push_registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), unique=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    # Kept as is, not hashed: every notification is signed with it.
    secret: Mapped[str] = mapped_column(String(64))
    # The last inquiry_change (xact, id) notified. A new registration starts at the oldest
    # transaction in flight, so it is not flooded with history and misses nothing in flight.
    cursor_xact: Mapped[int] = mapped_column(
        Xid8(), server_default=text("pg_snapshot_xmin(pg_current_snapshot())")
    )
    cursor_id: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    department: Mapped["Department"] = relationship(lazy="raise")

    @property
    def department_code(self) -> str:
        return self.department.code
