import enum
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Timestamped

if TYPE_CHECKING:
    from app.departments.models import Department


class Role(enum.StrEnum):
    operator = "operator"  # runs an account; the staffing rule counts these
    responder = "responder"  # answers inquiries
    reviewer = "reviewer"  # checks answers before they go out
    supervisor = "supervisor"  # decides for an office: arbitration, extensions, pauses


class Person(Timestamped, Base):
    """Someone of a department who operates accounts or acts on inquiries."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    contact: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(16)), default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    department: Mapped["Department"] = relationship(lazy="raise")

    @property
    def department_code(self) -> str:
        return self.department.code
