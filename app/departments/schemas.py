from datetime import datetime
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from app.departments.models import Level
from app.schemas import Schema

DepartmentCode = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$",
        description="Stable identifier: lowercase letters, digits and hyphens.",
        examples=["hefei-social-security"],
    ),
]
RegionCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{6}$",
        description="6-digit administrative division code (行政区划代码).",
        examples=["340100"],
    ),
]


def check_region_fits_level(level: Level, region_code: str) -> None:
    """Division codes are XX0000 (province), XXYY00 (city), XXYYZZ (county)."""
    tail = region_code[level.prefix_length :]
    significant = region_code[: level.prefix_length]
    if set(tail) - {"0"} or (level is not Level.province and significant.endswith("00")):
        raise ValueError(
            f"region_code {region_code} is not a {level.value} code "
            "(province XX0000, city XXYY00, county XXYYZZ)"
        )


class DepartmentCreate(Schema):
    code: DepartmentCode
    name: str = Field(min_length=2, max_length=200, examples=["合肥市人力资源和社会保障局"])
    level: Level
    region_code: RegionCode
    parent_code: DepartmentCode | None = None
    duties: str = Field(
        default="",
        max_length=20_000,
        description="What the department is responsible for (职责), in plain words.",
        examples=["社会保险参保缴费、劳动保障监察、就业服务"],
    )
    is_supervising_office: StrictBool = Field(
        default=False, description="The general office (办公厅/办公室) of its level and region."
    )
    published_contacts: list[Annotated[str, Field(min_length=3, max_length=64)]] = Field(
        default_factory=list,
        max_length=20,
        description="Its own published contacts (hotline, office phone): a public reply may "
        "carry them, where a citizen's number is refused.",
        examples=[["0551-12333"]],
    )

    @model_validator(mode="after")
    def _region_fits_level(self) -> Self:
        check_region_fits_level(self.level, self.region_code)
        return self


class DepartmentUpdate(Schema):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    parent_code: DepartmentCode | None = None
    duties: str | None = Field(default=None, max_length=20_000)
    is_supervising_office: StrictBool | None = None
    active: StrictBool | None = None
    published_contacts: list[Annotated[str, Field(min_length=3, max_length=64)]] | None = Field(
        default=None, max_length=20
    )


class DepartmentRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "hefei-hrss",
                    "name": "合肥市人力资源和社会保障局",
                    "level": "city",
                    "region_code": "340100",
                    "parent_code": "hefei-office",
                    "duties": "社会保险参保缴费、劳动保障监察、就业服务",
                    "is_supervising_office": False,
                    "active": True,
                    "published_contacts": ["0551-12333"],
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-24T02:00:00Z",
                }
            ]
        }
    )

    code: str
    name: str
    level: Level
    region_code: str
    parent_code: str | None
    duties: str
    is_supervising_office: StrictBool
    active: StrictBool
    published_contacts: list[str]
    created_at: datetime
    updated_at: datetime


class SupervisingOffices(Schema):
    """Who supervises a department: the nearest office arbitrates; every one listed may read."""

    nearest: DepartmentRead | None
    enclosing: list[DepartmentRead] = Field(description="Nearest first.")
