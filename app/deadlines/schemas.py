from datetime import date, datetime
from typing import Literal, Self

from pydantic import ConfigDict, Field, StrictBool, model_validator

from app.deadlines.models import DayKind, RecountStatus, Unit, YearStatus
from app.schemas import Schema

PURPOSES = (
    "consultation",
    "help",
    "complaint",
    "report",
    "suggestion",
    "other",
    "acknowledge",
    "referral",
    "urgent",
)


class DayEntry(Schema):
    day: date
    name: str = Field(default="", max_length=100, examples=["春节"])


class YearEntry(Schema):
    """A year as the State Council's notice sets it."""

    source: str = Field(
        min_length=4,
        max_length=500,
        description="The notice: number, date, title.",
        examples=["国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕X号）"],
    )
    days_off: list[DayEntry] = Field(description="Every day off, weekends inside blocks included.")
    workdays: list[DayEntry] = Field(
        default_factory=list, description="Weekend working days (调休)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        off = {entry.day for entry in self.days_off}
        on = {entry.day for entry in self.workdays}
        if off & on:
            raise ValueError(f"both off and working: {', '.join(map(str, sorted(off & on)))}")
        if weekdays := [d for d in on if d.weekday() < 5]:
            raise ValueError(f"a 调休 working day must be a Saturday or Sunday: {weekdays[0]}")
        return self


class CalendarDayRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"day": "2026-10-10", "kind": "workday", "name": "National Day"}]
        }
    )

    day: date
    kind: DayKind
    name: str


class CalendarYearRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "status": "official",
                    "source": "chinesecalendar 1.11.0 (from the State Council's yearly notices)",
                    "version": 1,
                    "updated_at": "2026-11-24T02:00:00Z",
                    "days": [{"day": "2026-02-14", "kind": "workday", "name": "Spring Festival"}],
                }
            ]
        }
    )

    year: int
    status: YearStatus
    source: str
    version: int
    updated_at: datetime
    days: list[CalendarDayRead] = Field(default_factory=list)
    recount: "RecountRead | None" = Field(
        default=None, description="The latest recount of open inquiries after an entry."
    )


class RecountRead(Schema):
    """Open inquiries counted again after a year was entered, by a batched job."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2027,
                    "status": "running",
                    "total": 1200,
                    "done": 400,
                    "requested_at": "2026-12-01T02:00:00Z",
                    "finished_at": None,
                }
            ]
        }
    )

    year: int | None = Field(description="None: every open inquiry was counted again.")
    status: RecountStatus
    total: int = Field(description="Open inquiries touched by the year when it was entered.")
    done: int
    requested_at: datetime
    finished_at: datetime | None


class DeadlineRuleCreate(Schema):
    purpose: str = Field(
        description="An inquiry kind, or acknowledge, referral, urgent.", examples=["complaint"]
    )
    region_prefix: str | None = Field(
        default=None, pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6})$", examples=["3401"]
    )
    channel: Literal["private_message", "comment"] | None = None
    unit: Unit
    length: int = Field(ge=1, le=366)
    source: str = Field(
        min_length=4,
        max_length=500,
        description="The document it follows.",
        examples=["合肥市政务新媒体管理办法（test）第十条"],
    )

    @model_validator(mode="after")
    def _purpose(self) -> Self:
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}")
        return self


class DeadlineRuleUpdate(Schema):
    unit: Unit | None = None
    length: int | None = Field(default=None, ge=1, le=366)
    source: str | None = Field(default=None, min_length=4, max_length=500)
    active: StrictBool | None = None


class DeadlineRuleRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "purpose": "complaint",
                    "region_prefix": None,
                    "channel": None,
                    "unit": "working_days",
                    "length": 15,
                    "source": "default after 广东省12345政务服务便民热线管理办法 (2022)",
                    "is_default": True,
                    "active": True,
                }
            ]
        }
    )

    id: int
    purpose: str
    region_prefix: str | None
    channel: str | None
    unit: Unit
    length: int
    source: str
    is_default: StrictBool
    active: StrictBool
