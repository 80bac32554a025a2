"""freeze the official calendar years of chinesecalendar 1.11.0 into the migrations

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 22:00:00+00:00
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Until now the official years were seeded at start-up by `make run` and the worker only, so
# `alembic upgrade head` + uvicorn ran on an empty calendar. They are data of the schema's history
# now: written here as literals, so the result never depends on the package installed when the
# migration runs (a later package with more years gets a migration of its own).
SOURCE = (
    "chinesecalendar 1.11.0 (from the State Council's yearly notices), frozen by migration 0014"
)

# The package's holiday names, one letter each in YEARS.
NAMES = {
    "N": "New Year's Day",
    "S": "Spring Festival",
    "T": "Tomb-sweeping Day",
    "L": "Labour Day",
    "D": "Dragon Boat Festival",
    "M": "Mid-autumn Festival",
    "O": "National Day",
    "A": "Anti-Fascist 70th Day",
}

# Per year: (days off, 调休 workdays), each day as MMDD and its holiday's letter. Generated from
# chinese_calendar.constants.holidays / .workdays of chinesecalendar 1.11.0; a day belongs to the
# year of its date (a 调休 Saturday in late December may serve the next New Year).
YEARS: dict[int, tuple[str, str]] = {
    2004: (
        "0101N 0122S 0123S 0124S 0125S 0126S 0127S 0128S 0501L 0502L 0503L 0504L 0505L 0506L "
        "0507L 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0117S 0118S 0508L 0509L 1009O 1010O",
    ),
    2005: (
        "0101N 0102N 0103N 0209S 0210S 0211S 0212S 0213S 0214S 0215S 0501L 0502L 0503L 0504L "
        "0505L 0506L 0507L 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0205S 0206S 0430L 0508L 1008O 1009O",
    ),
    2006: (
        "0101N 0102N 0103N 0129S 0130S 0131S 0201S 0202S 0203S 0204S 0501L 0502L 0503L 0504L "
        "0505L 0506L 0507L 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0128S 0205S 0429L 0430L 0930O 1008O 1230N 1231N",
    ),
    2007: (
        "0101N 0102N 0103N 0218S 0219S 0220S 0221S 0222S 0223S 0224S 0501L 0502L 0503L 0504L "
        "0505L 0506L 0507L 1001O 1002O 1003O 1004O 1005O 1006O 1007O 1230N 1231N",
        "0217S 0225S 0428L 0429L 0929O 0930O 1229N",
    ),
    2008: (
        "0101N 0206S 0207S 0208S 0209S 0210S 0211S 0212S 0404T 0405T 0406T 0501L 0502L 0503L "
        "0607D 0608D 0609D 0913M 0914M 0915M 0929O 0930O 1001O 1002O 1003O 1004O 1005O",
        "0202S 0203S 0504L 0927O 0928O",
    ),
    2009: (
        "0101N 0102N 0103N 0125S 0126S 0127S 0128S 0129S 0130S 0131S 0404T 0405T 0406T 0501L "
        "0502L 0503L 0528D 0529D 0530D 1001O 1002O 1003M 1004O 1005O 1006O 1007O 1008O",
        "0104N 0124S 0201S 0531D 0927O 1010O",
    ),
    2010: (
        "0101N 0102N 0103N 0213S 0214S 0215S 0216S 0217S 0218S 0219S 0403T 0404T 0405T 0501L "
        "0502L 0503L 0614D 0615D 0616D 0922M 0923M 0924M 1001O 1002O 1003O 1004O 1005O 1006O "
        "1007O",
        "0220S 0221S 0612D 0613D 0919M 0925M 0926O 1009O",
    ),
    2011: (
        "0101N 0102N 0103N 0202S 0203S 0204S 0205S 0206S 0207S 0208S 0403T 0404T 0405T 0430L "
        "0501L 0502L 0604D 0606D 0910M 0911M 0912M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0130S 0212S 0402T 1008O 1009O 1231N",
    ),
    2012: (
        "0101N 0102N 0103N 0122S 0123S 0124S 0125S 0126S 0127S 0128S 0402T 0403T 0404T 0429L "
        "0430L 0501L 0622D 0624D 0930M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0121S 0129S 0331T 0401T 0428L 0929O",
    ),
    2013: (
        "0101N 0102N 0103N 0209S 0210S 0211S 0212S 0213S 0214S 0215S 0404T 0405T 0406T 0429L "
        "0430L 0501L 0610D 0611D 0612D 0919M 0920M 0921M 1001O 1002O 1003O 1004O 1005O 1006O "
        "1007O",
        "0105N 0106N 0216S 0217S 0407T 0427L 0428L 0608D 0609D 0922M 0929O 1012O",
    ),
    2014: (
        "0101N 0131S 0201S 0202S 0203S 0204S 0205S 0206S 0405T 0406T 0407T 0501L 0502L 0503L "
        "0602D 0908M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0126S 0208S 0504L 0928O 1011O",
    ),
    2015: (
        "0101N 0102N 0103N 0218S 0219S 0220S 0221S 0222S 0223S 0224S 0405T 0406T 0501L 0620D "
        "0622D 0903A 0904A 0927M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0104N 0215S 0228S 0906A 1010O",
    ),
    2016: (
        "0101N 0207S 0208S 0209S 0210S 0211S 0212S 0213S 0404T 0501L 0502L 0609D 0610D 0611D "
        "0915M 0916M 0917M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0206S 0214S 0612D 0918M 1008O 1009O",
    ),
    2017: (
        "0101N 0102N 0127S 0128S 0129S 0130S 0131S 0201S 0202S 0402T 0403T 0404T 0501L 0528D "
        "0529D 0530D 1001O 1002O 1003O 1004M 1005O 1006O 1007O 1008O",
        "0122S 0204S 0401T 0527D 0930O",
    ),
    2018: (
        "0101N 0215S 0216S 0217S 0218S 0219S 0220S 0221S 0405T 0406T 0407T 0429L 0430L 0501L "
        "0618D 0924M 1001O 1002O 1003O 1004O 1005O 1006O 1007O 1230N 1231N",
        "0211S 0224S 0408T 0428L 0929O 0930O 1229N",
    ),
    2019: (
        "0101N 0204S 0205S 0206S 0207S 0208S 0209S 0210S 0405T 0406T 0407T 0501L 0502L 0503L "
        "0504L 0607D 0608D 0609D 0913M 0914M 0915M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0202S 0203S 0428L 0505L 0929O 1012O",
    ),
    2020: (
        "0101N 0124S 0125S 0126S 0127S 0128S 0129S 0130S 0131S 0201S 0202S 0404T 0405T 0406T "
        "0501L 0502L 0503L 0504L 0505L 0625D 0626D 0627D 1001O 1002O 1003O 1004O 1005O 1006O "
        "1007O 1008O",
        "0119S 0426L 0509L 0628D 0927O 1010O",
    ),
    2021: (
        "0101N 0102N 0103N 0211S 0212S 0213S 0214S 0215S 0216S 0217S 0403T 0404T 0405T 0501L "
        "0502L 0503L 0504L 0505L 0612D 0613D 0614D 0919M 0920M 0921M 1001O 1002O 1003O 1004O "
        "1005O 1006O 1007O",
        "0207S 0220S 0425L 0508L 0918M 0926O 1009O",
    ),
    2022: (
        "0101N 0102N 0103N 0131S 0201S 0202S 0203S 0204S 0205S 0206S 0403T 0404T 0405T 0430L "
        "0501L 0502L 0503L 0504L 0603D 0604D 0605D 0910M 0911M 0912M 1001O 1002O 1003O 1004O "
        "1005O 1006O 1007O 1231N",
        "0129S 0130S 0402T 0424L 0507L 1008O 1009O",
    ),
    2023: (
        "0101N 0102N 0121S 0122S 0123S 0124S 0125S 0126S 0127S 0405T 0429L 0430L 0501L 0502L "
        "0503L 0622D 0623D 0624D 0929M 0930O 1001O 1002O 1003O 1004O 1005O 1006O 1230N 1231N",
        "0128S 0129S 0423L 0506L 0625D 1007O 1008O",
    ),
    2024: (
        "0101N 0210S 0211S 0212S 0213S 0214S 0215S 0216S 0217S 0404T 0405T 0406T 0501L 0502L "
        "0503L 0504L 0505L 0610D 0915M 0916M 0917M 1001O 1002O 1003O 1004O 1005O 1006O 1007O",
        "0204S 0218S 0407T 0428L 0511L 0914M 0929O 1012O",
    ),
    2025: (
        "0101N 0128S 0129S 0130S 0131S 0201S 0202S 0203S 0204S 0404T 0405T 0406T 0501L 0502L "
        "0503L 0504L 0505L 0531D 0601D 0602D 1001O 1002O 1003O 1004O 1005O 1006M 1007O 1008O",
        "0126S 0208S 0427L 0928O 1011O",
    ),
    2026: (
        "0101N 0102N 0103N 0215S 0216S 0217S 0218S 0219S 0220S 0221S 0222S 0223S 0404T 0405T "
        "0406T 0501L 0502L 0503L 0504L 0505L 0619D 0620D 0621D 0925M 0926M 0927M 1001O 1002O "
        "1003O 1004O 1005O 1006O 1007O",
        "0104N 0214S 0228S 0509L 0920O 1010O",
    ),
}


def _days(year: int, encoded: str, kind: str) -> list[dict[str, object]]:
    return [
        {
            "day": date(year, int(token[:2]), int(token[2:4])),
            "year": year,
            "kind": kind,
            "name": NAMES[token[4]],
        }
        for token in encoded.split()
    ]


calendar_year = sa.table(
    "calendar_year",
    sa.column("year", sa.Integer),
    sa.column("status", sa.String),
    sa.column("source", sa.Text),
    sa.column("version", sa.Integer),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
calendar_day = sa.table(
    "calendar_day",
    sa.column("day", sa.Date),
    sa.column("year", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("name", sa.String),
)


def upgrade() -> None:
    # Fail fast instead of queueing behind live traffic for a lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    bind = op.get_bind()
    # As the start-up seed did: a year with no row, or only a provisional one, gets the package's
    # notice; a year someone already entered as official (PUT /admin/calendar) is left alone.
    rows = bind.execute(
        sa.select(calendar_year.c.year, calendar_year.c.status)
        .where(calendar_year.c.year.in_(list(YEARS)))
        .with_for_update()
    )
    known = {year: status for year, status in rows}
    for year, (days_off, workdays) in sorted(YEARS.items()):
        if known.get(year) == "official":
            continue
        if year in known:
            bind.execute(
                calendar_year.update()
                .where(calendar_year.c.year == year)
                .values(
                    status="official",
                    source=SOURCE,
                    version=calendar_year.c.version + 1,
                    updated_at=sa.func.now(),
                )
            )
            bind.execute(calendar_day.delete().where(calendar_day.c.year == year))
        else:
            bind.execute(
                calendar_year.insert().values(
                    year=year, status="official", source=SOURCE, version=1
                )
            )
        bind.execute(
            calendar_day.insert(),
            _days(year, days_off, "day_off") + _days(year, workdays, "workday"),
        )


def downgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    # Only the years this migration wrote and nobody has re-entered since (their days go with them,
    # ON DELETE CASCADE); a year entered by an admin after the upgrade carries another source.
    op.get_bind().execute(
        calendar_year.delete().where(
            calendar_year.c.source == SOURCE, calendar_year.c.year.in_(list(YEARS))
        )
    )
