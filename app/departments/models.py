import enum

from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Timestamped


class Level(enum.StrEnum):
    """Administrative level; it decides how many digits of the division code form the region."""

    province = "province"
    city = "city"
    county = "county"

    @property
    def prefix_length(self) -> int:
        return {Level.province: 2, Level.city: 4, Level.county: 6}[self]


class Department(Timestamped, Base):
    """A government department, or the supervising (general) office 办公厅/办公室 of its level."""

    __tablename__ = "department"
    __table_args__ = (
        # Division codes are XX0000 (province), XXYY00 (city), XXYYZZ (county): the level decides
        # which digits are the region, so a code must be well formed for its level.
        CheckConstraint(
            "(level = 'province' AND region_code ~ '^[0-9]{2}0000$')"
            " OR (level = 'city' AND region_code ~ '^[0-9]{4}00$' AND region_code !~ '0000$')"
            " OR (level = 'county' AND region_code ~ '^[0-9]{6}$' AND region_code !~ '00$')",
            name="region_code_fits_level",
        ),
        Index(
            "uq_department_office_per_region",
            "level",
            "region_code",
            unique=True,
            postgresql_where=text("is_supervising_office AND active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[Level] = mapped_column(Enum(Level, native_enum=False, length=16))
    region_code: Mapped[str] = mapped_column(String(6))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("department.id", ondelete="RESTRICT"))
    duties: Mapped[str] = mapped_column(Text, default="")
    is_supervising_office: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Its own published contacts (hotline, office phone): a public reply may carry them.
    published_contacts: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), server_default="{}", default=list
    )

    parent: Mapped["Department | None"] = relationship(remote_side=[id], lazy="raise")

    @property
    def parent_code(self) -> str | None:
        return self.parent.code if self.parent is not None else None
