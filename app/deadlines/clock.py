"""The deadline clock: one pure function from an inquiry's facts to its due times.

Every change that can move a due time (routing, an urgent flag, a kind correction, a pause that
ends, an extension decided, a calendar year entered) reads the facts under the inquiry's row lock
and calls `dues`; nothing adds days to a stored due time.

Pause credit (deadline-and-assessment-rules.md §3.2): a pause credits the units that lie wholly
inside it, from the day after it started to the day before it ended. Fri 2026-10-09 → Mon 10-12
credits 1 (Saturday 10-10, a 调休 working day). An hours period (urgent) credits the pause's own
length. All pauses together credit at most the rule's own length.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.deadlines.calendar import CHINA, END_OF_DAY, WorkCalendar, due_at


@dataclass(frozen=True)
class Period:
    unit: str  # working_days, calendar_days or hours (deadlines.models.Unit)
    length: int


@dataclass(frozen=True)
class Stop:
    """A span in which the clock stood still; `end` None: still stopped (credits nothing yet)."""

    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Facts:
    received_at: datetime
    reply: Period
    first_response: Period | None = None  # acknowledge, or urgent
    first_response_from: datetime | None = None  # receipt, or when urgent words arrived
    stops: Sequence[Stop] = ()  # in the order they started
    extension_days: int = 0  # an approved extension, in working days


@dataclass(frozen=True)
class Dues:
    first_response_due_at: datetime | None
    reply_due_at: datetime
    original_due_at: datetime | None  # before an approved extension; None without one
    provisional: bool  # relies on a year without an official notice
    credits: tuple[int, ...]  # per stop, in the reply period's unit (0 for an hours period)


def _local(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def _end_of(day: date) -> datetime:
    return datetime.combine(day, END_OF_DAY, CHINA).astimezone(UTC)


def stop_credit(stop: Stop, unit: str, calendar: WorkCalendar) -> int:
    """Whole days inside a stop: working days (or calendar days) after its first day and before
    its last. A stop still running credits nothing."""
    if stop.end is None:
        return 0
    first, last = _local(stop.start), _local(stop.end) - timedelta(days=1)
    if last <= first:
        return 0
    if unit == "calendar_days":
        return (last - first).days
    return calendar.working_days_between(first, last)


def _unofficial(calendar: WorkCalendar, start: date, end: date) -> bool:
    return any(calendar.provisional(date(year, 1, 1)) for year in range(start.year, end.year + 1))


def dues(facts: Facts, calendar: WorkCalendar) -> Dues:
    """The inquiry's due times from its facts."""
    first = None
    if facts.first_response is not None:
        start = facts.first_response_from or facts.received_at
        first, _ = due_at(start, facts.first_response.unit, facts.first_response.length, calendar)
    reply = facts.reply
    if reply.unit == "hours":
        allowance = timedelta(hours=reply.length)
        stopped = timedelta(0)
        for stop in facts.stops:
            if stop.end is not None:
                stopped = min(allowance, stopped + max(stop.end - stop.start, timedelta(0)))
        due = facts.received_at + allowance + stopped
        return Dues(first, due, None, False, tuple(0 for _ in facts.stops))
    credits: list[int] = []
    left = reply.length
    for stop in facts.stops:
        credit = min(stop_credit(stop, reply.unit, calendar), left)
        credits.append(credit)
        left -= credit
    paused = sum(credits)
    received = _local(facts.received_at)
    if reply.unit == "working_days":
        day, provisional = calendar.add_working_days(received, reply.length + paused)
    else:  # calendar days; a last day on a rest day moves to the next working day
        last = received + timedelta(days=reply.length + paused)
        day = calendar.next_working_day_on_or_after(last)
        provisional = _unofficial(calendar, last, day)
    original = None
    if facts.extension_days:
        original = _end_of(day)
        day, later = calendar.add_working_days(day, facts.extension_days)
        provisional = provisional or later
    return Dues(first, _end_of(day), original, provisional, tuple(credits))
