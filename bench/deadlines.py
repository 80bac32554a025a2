"""Due dates per second (issue #6): our in-memory WorkCalendar against a plain loop over
chinesecalendar.find_workday, in the same run, on the same realistic mix. Run by hand:

    .venv/bin/python bench/deadlines.py            # about 20 seconds
    .venv/bin/python bench/deadlines.py --quick

The mix: receipts spread over 2025-2026 (holiday blocks included, Spring Festival and National
Day), periods of 2, 10 and 15 working days, half of them lengthened by 1 or 3 working days as a
pause would lengthen them. Target: at least 200,000 due dates per second. Both sides give the
same dates for receipts on working days (checked; for a receipt on a rest day find_workday
counts from the next working day, the issue's convention from the day after receipt).
"""

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta

import chinese_calendar

from app.deadlines.calendar import WorkCalendar, due_in_working_days
from app.deadlines.models import DayKind, YearStatus

TARGET = 200_000


def package_calendar() -> WorkCalendar:
    """The same data our seed writes to the table, built the way `service.load` builds it."""
    days = [(d, DayKind.day_off) for d in chinese_calendar.constants.holidays]
    days += [(d, DayKind.workday) for d in chinese_calendar.constants.workdays]
    years = {year: YearStatus.official for year in range(2004, 2027)}
    return WorkCalendar.build(years, days, "bench")


def mix(n: int, seed: int = 7) -> list[tuple[datetime, int, int]]:
    """(received at, working days, working days paused)."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    cases = []
    for _ in range(n):
        received = start + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60 - 40 * 24 * 60))
        pause = rng.choice((0, 0, 1, 3))
        cases.append((received, rng.choice((2, 10, 15)), pause))
    return cases


def ours(calendar: WorkCalendar, cases: list[tuple[datetime, int, int]]) -> list[date]:
    return [due_in_working_days(r, days + pause, calendar)[0].date() for r, days, pause in cases]


def package_loop(cases: list[tuple[datetime, int, int]]) -> list[date]:
    china = timedelta(hours=8)
    return [
        chinese_calendar.find_workday(days + pause, (r + china).date()) for r, days, pause in cases
    ]


def rate(
    fn: object, cases: list[tuple[datetime, int, int]], *args: object
) -> tuple[float, list[date]]:
    started = time.perf_counter()
    result = fn(*args, cases)  # type: ignore[operator]
    return len(cases) / (time.perf_counter() - started), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    n = 50_000 if parser.parse_args().quick else 300_000
    calendar = package_calendar()
    cases = mix(n)
    ours_rate, ours_dates = rate(ours, cases, calendar)
    package_rate, package_dates = rate(package_loop, cases[: n // 10])
    # find_workday counts from the first working day when it starts on a rest day; the issue's
    # convention counts from the day after receipt. They agree on receipts on working days.
    china = timedelta(hours=8)
    on_workdays = [
        i
        for i, (r, _, _) in enumerate(cases[: n // 10])
        if chinese_calendar.is_workday((r + china).date())
    ]
    assert all(ours_dates[i] == package_dates[i] for i in on_workdays), "the computations disagree"
    print(f"cases: {n} (package loop: {n // 10})")
    print(f"WorkCalendar (ours):              {ours_rate:>12,.0f} due dates/s")
    print(f"chinesecalendar.find_workday loop: {package_rate:>12,.0f} due dates/s")
    print(f"ratio ours/package: {ours_rate / package_rate:.1f}x")
    print(f"{'PASS' if ours_rate >= TARGET else 'FAIL'}  target >= {TARGET:,} due dates/s")


if __name__ == "__main__":
    main()
