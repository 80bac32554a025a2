"""The clock against a plain day-by-day count (issue 11): random receipts, rule lengths, pauses
and extensions over official and provisional years, 调休 included. The oracle asks
chinesecalendar day by day for official years, and weekends plus the statutory days for
provisional ones; it shares no code with WorkCalendar's bisecting."""

from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar
from hypothesis import given, settings
from hypothesis import strategies as st

from app.deadlines import clock
from app.deadlines.calendar import CHINA, WorkCalendar, statutory_days
from app.deadlines.models import DayKind, YearStatus

OFFICIAL = range(2023, 2027)  # in the pinned package
PROVISIONAL = range(2027, 2030)


def _calendar() -> WorkCalendar:
    years = {y: YearStatus.official for y in OFFICIAL} | {
        y: YearStatus.provisional for y in PROVISIONAL
    }
    days: list[tuple[date, DayKind]] = []
    for day in chinese_calendar.constants.holidays:
        if day.year in OFFICIAL:
            days.append((day, DayKind.day_off))
    for day in chinese_calendar.constants.workdays:
        if day.year in OFFICIAL:
            days.append((day, DayKind.workday))
    for year in PROVISIONAL:
        days += [(day, DayKind.day_off) for day, _ in statutory_days(year)]
    return WorkCalendar.build(years, days, "property")


CALENDAR = _calendar()


def is_working(day: date) -> bool:
    if day.year in OFFICIAL:
        return bool(chinese_calendar.is_workday(day))
    return day.weekday() < 5 and day not in dict(statutory_days(day.year))


def count_from(start: date, working_days: int) -> date:
    """The `working_days`-th working day after `start`, one day at a time."""
    day, seen = start, 0
    while seen < working_days:
        day += timedelta(days=1)
        seen += is_working(day)
    return day


def inside(start: datetime, end: datetime) -> int:
    """Working days wholly inside a pause, one day at a time."""
    first, last = start.astimezone(CHINA).date(), end.astimezone(CHINA).date()
    day, found = first + timedelta(days=1), 0
    while day < last:
        found += is_working(day)
        day += timedelta(days=1)
    return found


def moment(day: date, minutes: int) -> datetime:
    return datetime.combine(day, time(), CHINA).astimezone(UTC) + timedelta(minutes=minutes)


@settings(max_examples=300, deadline=None)
@given(
    received=st.dates(date(2024, 1, 1), date(2027, 10, 31)),
    received_minute=st.integers(0, 24 * 60 - 1),
    length=st.integers(1, 20),
    gaps=st.lists(
        st.tuples(st.integers(0, 15), st.integers(0, 6000), st.integers(0, 30 * 24 * 60)),
        max_size=2,
    ),
    extension=st.integers(0, 20),
)
def test_the_clock_agrees_with_a_day_by_day_count(
    received: date,
    received_minute: int,
    length: int,
    gaps: list[tuple[int, int, int]],
    extension: int,
) -> None:
    received_at = moment(received, received_minute)
    stops, cursor = [], received_at
    for days_later, start_minute, minutes_long in gaps:
        start = cursor + timedelta(days=days_later, minutes=start_minute)
        stops.append(clock.Stop(start, start + timedelta(minutes=minutes_long)))
        cursor = start + timedelta(minutes=minutes_long)
    facts = clock.Facts(
        received_at=received_at,
        reply=clock.Period("working_days", length),
        first_response=clock.Period("working_days", 1),
        stops=stops,
        extension_days=extension,
    )
    dues = clock.dues(facts, CALENDAR)

    credited, left = [], length
    for stop in stops:
        assert stop.end is not None
        credit = min(inside(stop.start, stop.end), left)
        credited.append(credit)
        left -= credit
    base = count_from(received_at.astimezone(CHINA).date(), length + sum(credited))
    final = count_from(base, extension)
    assert dues.credits == tuple(credited)
    assert dues.reply_due_at.astimezone(CHINA).date() == final
    assert dues.reply_due_at.astimezone(CHINA).time() == time(23, 59, 59)
    assert dues.original_due_at == (
        datetime.combine(base, time(23, 59, 59), CHINA).astimezone(UTC) if extension else None
    )
    assert dues.provisional == (final.year >= PROVISIONAL.start)
    assert dues.first_response_due_at is not None
    assert dues.first_response_due_at.astimezone(CHINA).date() == count_from(
        received_at.astimezone(CHINA).date(), 1
    )
    assert sum(credited) <= length


def test_the_readme_example_credits_the_tiaoxiu_saturday_only() -> None:
    # Friday 2026-10-09 → Monday 10-12: Saturday 10-10 is a 调休 working day, Sunday is off.
    stop = clock.Stop(moment(date(2026, 10, 9), 600), moment(date(2026, 10, 12), 600))
    assert clock.stop_credit(stop, "working_days", CALENDAR) == 1
