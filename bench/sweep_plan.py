"""The deadline sweep's page query with and without the partial index ix_inquiry_open_clock
(migration 0015), side by side on the same data. Run by hand from the repo root:

    .venv/bin/python bench/sweep_plan.py                  # 1,000,000 inquiries, about 1 minute
    .venv/bin/python bench/sweep_plan.py --rows 200000    # a smoke run

Uses DATABASE_URL's server if set, else embedded PostgreSQL in var/pgdata-bench; either way a
fresh database govinbox_bench_<hex>, migrated to head and dropped at the end. One INSERT ...
SELECT generate_series writes --rows inquiries of one account and department, all with a
department and a reply due time: every 50th id is 'assigned' (2%, spread evenly over the ids),
the rest 'closed'. Then VACUUM ANALYZE, and EXPLAIN (ANALYZE, BUFFERS) of the first page (after
id 0) and of a middle page (after id rows/2): first with the index dropped (the baseline: the
plan the sweep had before 0015), then with it created again. Each is run once to warm the cache,
then RUNS times; the run of median execution time is printed, with the rows the scan read and
threw away, its buffers, and the ratio of execution times baseline/with index.

Without the index the plan depends on the table's size: at 1,000,000 rows PostgreSQL 16 walks
the primary key from the page's start and filters out the closed rows (about 49 for each open
one); at 100,000 it read every open row through ix_inquiry_department_open_due and sorted them.
The rows are narrower than real ones (no text bodies), so the baseline's heap reads are a floor.
"""

import argparse
import re
import secrets
import statistics
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy import create_engine

import app.models  # noqa: F401  (every model, so the mappers configure)
from app import embedded
from app.db import migrate
from app.deadlines.alerts import page_query
from app.settings import settings

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000  # sweep()'s default page size
RUNS = 5
INDEX = "ix_inquiry_open_clock"
DIALECT = create_engine("postgresql+psycopg://").dialect  # the app's driver; never connects
SCAN = r"(?:Seq|Index|Index Only|Bitmap Heap) Scan .*actual time=\S+ rows=(\d+) loops=(\d+)"
# The index exactly as migration 0015 creates it.
CREATE_INDEX = (
    f"CREATE INDEX {INDEX} ON inquiry (id) WHERE status IN ('new', 'assigned')"
    " AND department_id IS NOT NULL AND reply_due_at IS NOT NULL"
)

SEED = """
INSERT INTO department (code, name, level, region_code, duties, is_supervising_office, active)
VALUES ('bench-office', 'Bench office', 'city', '340100', '', false, true);
INSERT INTO account (code, platform, account_type, verified, display_name, department_id, level,
                     active)
SELECT 'bench-wechat', 'wechat', 'wechat_service', true, 'Bench', id, 'city', true
  FROM department WHERE code = 'bench-office';
"""
# 2% open ('assigned') at every 50th id, 98% closed; all routed, with a department and a due time.
INQUIRIES = """
INSERT INTO inquiry (id, reference, account_id, platform, channel, citizen_id, received_at, kind,
                     status, department_id, reply_due_at, deadline_unit, deadline_length,
                     last_message_at, routed_at)
SELECT i, 'BENCH-' || i, a.id, 'wechat', 'private_message', 'citizen-' || i, t, 'consultation',
       CASE WHEN i %% 50 = 0 THEN 'assigned' ELSE 'closed' END, a.department_id,
       t + interval '15 days', 'working_days', 10, t, t + interval '1 minute'
  FROM account a,
       generate_series(1, %(rows)s) AS i,
       LATERAL (SELECT now() - (%(rows)s - i) * interval '30 seconds' AS t) AS received
 WHERE a.code = 'bench-wechat'
"""


def page_sql(after_id: int) -> str:
    """The sweep's own page query (app.deadlines.alerts.page_query), compiled for PostgreSQL with
    the values inlined; the sweep sends the same statement with bound parameters."""
    statement = page_query(after_id, BATCH)
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True})
    return str(compiled)


@dataclass
class Plan:
    text: str
    ms: float

    def figures(self) -> dict[str, str]:
        """Rows the scans read (returned or thrown away), those thrown away, the top node's
        buffers (the whole query's) and the execution time."""
        removed = sum(int(n) for n in re.findall(r"Rows Removed by \w+(?: \w+)?: (\d+)", self.text))
        returned = sum(int(rows) * int(loops) for rows, loops in re.findall(SCAN, self.text))
        buffers = re.search(r"Buffers: (.+)", self.text)
        return {
            "read": f"{returned + removed:,}",
            "removed": f"{removed:,}",
            "buffers": buffers.group(1) if buffers else "-",
            "ms": f"{self.ms:.2f}",
        }


def explain(db: psycopg.Connection, after_id: int) -> Plan:
    """Warm once, then RUNS times; the run of median execution time."""
    statement = "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + page_sql(after_id)
    db.execute(statement)
    plans = []
    for _ in range(RUNS):
        text = "\n".join(row[0] for row in db.execute(statement))
        match = re.search(r"Execution Time: ([\d.]+) ms", text)
        assert match, text
        plans.append(Plan(text, float(match.group(1))))
    middle = statistics.median_low(plan.ms for plan in plans)
    return next(plan for plan in plans if plan.ms == middle)


def measure(db: psycopg.Connection, pages: dict[str, int], label: str) -> dict[str, Plan]:
    plans = {}
    for page, after_id in pages.items():
        plans[page] = plan = explain(db, after_id)
        print(f"\n--- {label}, {page} (after id {after_id:,}) ---\n{plan.text}")
    return plans


def run(url: str, rows: int) -> None:
    with psycopg.connect(embedded.libpq_url(url), autocommit=True) as db:
        version = db.execute("SHOW server_version").fetchone()
        db.execute(SEED)
        db.execute(INQUIRIES, {"rows": rows})
        db.execute(f"DROP INDEX {INDEX}")
        db.execute("VACUUM (ANALYZE) inquiry")
        total, open_ = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('new', 'assigned')) FROM inquiry"
        ).fetchone() or (0, 0)
        print(f"PostgreSQL {version[0] if version else '?'}: {total:,} inquiries, {open_:,} open")
        pages = {"first page": 0, "middle page": rows // 2}
        baseline = measure(db, pages, f"baseline: no {INDEX}")
        db.execute(CREATE_INDEX)
        with_index = measure(db, pages, f"with {INDEX}")

    print(f"\n{'':26}{'rows read':>10}{'removed':>10}{'execution ms':>14}  buffers")
    for page in pages:
        for label, plans in (("baseline", baseline), ("with index", with_index)):
            f = plans[page].figures()
            print(
                f"{page + ', ' + label:26}{f['read']:>10}{f['removed']:>10}{f['ms']:>14}"
                f"  {f['buffers']}"
            )
        ratio = baseline[page].ms / with_index[page].ms
        print(f"{page}: ratio baseline/with index {ratio:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="inquiries (2%% open)")
    args = parser.parse_args()
    server, source = settings().database_url, "DATABASE_URL"
    if server is None:
        server, source = embedded.start(ROOT / "var/pgdata-bench"), "embedded pgserver"
    name = f"govinbox_bench_{secrets.token_hex(6)}"
    url = embedded.create_database(server, name)
    print(f"server: {source}, database {name}")
    try:
        migrate(url)
        run(url, args.rows)
    finally:
        embedded.drop_database(server, name)


if __name__ == "__main__":
    main()
