from datetime import date, datetime
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from app.deadlines.models import DayKind, YearStatus
from app.schemas import Schema


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
