from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Timestamped

if TYPE_CHECKING:
    from app.departments.models import Department


class ApiKey(Timestamped, Base):
    """A department's credential, held by one person or a named client system; stored as a hash."""

    __tablename__ = "api_key"
    __table_args__ = (
        CheckConstraint(
            "(person_id IS NULL) <> (client_name IS NULL)", name="held_by_person_or_client"
        ),
        # A person's key acts with the person's roles; only a client system's key has its own.
        CheckConstraint(
            "(client_name IS NULL) = (roles IS NULL)", name="roles_only_on_client_keys"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="RESTRICT"))
    client_name: Mapped[str | None] = mapped_column(String(100))
    roles: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    label: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists so people can tell keys apart
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    department: Mapped["Department"] = relationship(lazy="raise")

    @property
    def department_code(self) -> str:
        return self.department.code
