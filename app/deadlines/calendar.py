"""Working days, from our own calendar table loaded into memory: pure, fast, no I/O.

Counting convention (deadline-and-assessment-rules.md §3.2, 民法典 art. 201/203): Asia/Shanghai;
the day of receipt is not counted; a period in working days ends at the end of the N-th working
day after the receipt date; weekend working days (调休) are working days.
"""

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
from lunardate import LunarDate

from app.deadlines.models import DayKind, YearStatus

CHINA = ZoneInfo("Asia/Shanghai")
END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class WorkCalendar:
    """Every working day of the known years, in order, and how each year is known."""

    years: Mapping[int, YearStatus]
    working: tuple[int, ...]  # proleptic ordinals of the working days, ascending
    version: str  # changes whenever any year changes; stored with each deadline

    @classmethod
    def build(
        cls,
        years: Mapping[int, YearStatus],
        exceptions: Iterable[tuple[date, DayKind]],
        version: str,
    ) -> "WorkCalendar":
        """From the table's years and exception days."""
        listed = list(exceptions)
        off = {d for d, kind in listed if kind is DayKind.day_off}
        on = {d for d, kind in listed if kind is DayKind.workday}
        working: list[int] = []
        for year in sorted(years):
            day, last = date(year, 1, 1), date(year, 12, 31)
            while day <= last:
                if (day.weekday() < 5 and day not in off) or day in on:
                    working.append(day.toordinal())
                day += timedelta(days=1)
        return cls(dict(years), tuple(working), version)

    def is_working_day(self, day: date) -> bool:
        ordinal = day.toordinal()
        index = bisect.bisect_left(self.working, ordinal)
        return index < len(self.working) and self.working[index] == ordinal

    def provisional(self, day: date) -> bool:
        """True when the day's year has no official notice in the table (or no row at all)."""
        return self.years.get(day.year) is not YearStatus.official

    def add_working_days(self, start: date, count: int) -> tuple[date, bool]:
        """The `count`-th working day strictly after `start`; and whether that relied on a year
        without an official notice (then the date is provisional)."""
        if count < 1:
            raise ValueError("count working days from 1")
        index = bisect.bisect_right(self.working, start.toordinal()) + count - 1
        if not self.working:  # an empty table: weekdays only, provisional
            end = start
            for _ in range(count):
                end += timedelta(days=1)
                while end.weekday() >= 5:
                    end += timedelta(days=1)
            return end, True
        if index < len(self.working):
            end = date.fromordinal(self.working[index])
        else:  # past the table: weekdays only, and provisional by definition
            end = max(start, date.fromordinal(self.working[-1]))
            for _ in range(index - len(self.working) + 1 if end != start else count):
                end += timedelta(days=1)
                while end.weekday() >= 5:
                    end += timedelta(days=1)
        return end, any(self.provisional(date(y, 1, 1)) for y in range(start.year, end.year + 1))

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end]: what a pause from `start` to `end` adds back."""
        if end <= start:
            return 0
        low = bisect.bisect_right(self.working, start.toordinal())
        high = bisect.bisect_right(self.working, end.toordinal())
        return high - low

    def next_working_day_on_or_after(self, day: date) -> date:
        index = bisect.bisect_left(self.working, day.toordinal())
        if index < len(self.working):
            return date.fromordinal(self.working[index])
        while day.weekday() >= 5:  # past the table: weekdays only
            day += timedelta(days=1)
        return day


def due_in_working_days(
    received_at: datetime, days: int, calendar: WorkCalendar
) -> tuple[datetime, bool]:
    """End of the `days`-th working day after the China date of receipt, as UTC."""
    local = received_at.astimezone(CHINA).date()
    end, provisional = calendar.add_working_days(local, days)
    return datetime.combine(end, END_OF_DAY, CHINA).astimezone(UTC), provisional


def due_at(
    received_at: datetime, unit: str, length: int, calendar: WorkCalendar
) -> tuple[datetime, bool]:
    """When a reply is due under a rule of `unit` and `length`; and whether that is provisional."""
    if unit == "hours":
        return received_at + timedelta(hours=length), False
    if unit == "working_days":
        return due_in_working_days(received_at, length, calendar)
    # Calendar days: a last day that is a rest day moves to the next working day (民法典 art. 203).
    last = received_at.astimezone(CHINA).date() + timedelta(days=length)
    end = calendar.next_working_day_on_or_after(last)
    provisional = any(calendar.provisional(date(y, 1, 1)) for y in range(last.year, end.year + 1))
    return datetime.combine(end, END_OF_DAY, CHINA).astimezone(UTC), provisional


def statutory_days(year: int) -> list[tuple[date, str]]:
    """The 13 statutory holiday days of 全国年节及纪念日放假办法 (国务院令第795号, from 2025),
    for a year without a notice: no 调休 and no bridging, which only the notice decides."""
    new_year = LunarDate(year, 1, 1).to_solar_date()
    qingming = next(
        d
        for d, name in chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 10))
        if name == "清明"
    )
    days = [
        (date(year, 1, 1), "元旦"),
        (new_year - timedelta(days=1), "春节（除夕）"),
        (new_year, "春节"),
        (new_year + timedelta(days=1), "春节"),
        (new_year + timedelta(days=2), "春节"),
        (qingming, "清明节"),
        (date(year, 5, 1), "劳动节"),
        (date(year, 5, 2), "劳动节"),
        (LunarDate(year, 5, 5).to_solar_date(), "端午节"),
        (LunarDate(year, 8, 15).to_solar_date(), "中秋节"),
        (date(year, 10, 1), "国庆节"),
        (date(year, 10, 2), "国庆节"),
        (date(year, 10, 3), "国庆节"),
    ]
    # Two festivals can fall on one day (中秋 on 3 October in 2028): one day, both names.
    merged: dict[date, str] = {}
    for day, name in days:
        merged[day] = f"{merged[day]}、{name}" if day in merged else name
    return sorted(merged.items())


def office_time_before(
    moment: datetime, hours: float, calendar: WorkCalendar, office_hours: tuple[str, str]
) -> datetime:
    """The instant `hours` of office time (working days, between office_hours in Beijing time)
    before `moment`: whatever reached someone before it has waited longer than `hours`."""
    opens, closes = (time.fromisoformat(value) for value in office_hours)
    left = timedelta(hours=hours)
    local = moment.astimezone(CHINA)
    day = local.date()
    for _ in range(3660):  # ten years back at most: a calendar without working days
        if calendar.is_working_day(day):
            start = datetime.combine(day, opens, CHINA)
            end = min(datetime.combine(day, closes, CHINA), local)
            if end > start:
                if end - start >= left:
                    return (end - left).astimezone(UTC)
                left -= end - start
        day -= timedelta(days=1)
    return (local - left).astimezone(UTC)
