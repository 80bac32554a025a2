"""Schemathesis over the whole OpenAPI document, twice: with the admin token, and with a department
key whose department holds real inquiries. Every operation, a few examples each, a fixed seed, all
checks on: no 500, and every answer as the document says (status, content type, schema). A new
route is covered here without anyone writing a test for it.

It runs against `make run`'s own process (`python -m app.serve`, the worker beside it) on a
database of its own, so destructive calls (deactivations) touch nothing else.
"""

import asyncio
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from app.embedded import create_database, drop_database, libpq_url
from app.main import create_app
from tests.operations import harness

pytestmark = pytest.mark.processes

# Beyond what JSON Schema can say, the service refuses some schema-valid input with 422: an RE2
# pattern that does not compile, a referral template without {name} and {contact}, a region code
# that does not fit the level, a calendar year that would leave a gap. An If-Match that names
# another version than the inquiry's is schema-valid and refused with 412 (a generated "null"
# does). The positive-data check accepts that 422 and 412, the negative-data check a 413; every
# other check keeps its defaults.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "422"]
            },
            # A webhook body past WEBHOOK_MAX_BODY_BYTES is refused as too large (413).
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413"),
                    *("415", "422", "428", "429", "5xx"),
                ]
            },
        }
    }
)
EXAMPLES = settings(
    max_examples=25,
    derandomize=True,  # a fixed seed: the same cases on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)


@pytest.fixture(scope="module")
def service(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The service with an office, an account, routed inquiries and a department key."""
    name = f"govinbox_schema_{secrets.token_hex(4)}"
    processes = harness.Processes(
        tmp_path_factory.mktemp("schemathesis"), create_database(server_url, name)
    )
    port = harness.free_port()
    processes.start("serve", "-m", "app.serve", PORT=str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        key = asyncio.run(_seed(base, processes.env["DATABASE_URL"]))
        with psycopg.connect(libpq_url(processes.env["DATABASE_URL"])) as connection:
            rows = connection.execute("SELECT reference FROM inquiry ORDER BY id").fetchall()
        yield {"base": base, "key": key, "references": " ".join(row[0] for row in rows)}
    finally:
        processes.stop()
        drop_database(server_url, name)


async def _seed(base: str, database_url: str) -> str:
    await harness.wait_until_ready(base)
    await harness.set_up_account(base)
    await harness.replay([base], 12, per_second=50.0, sends=1)
    await harness.wait_until_routed(database_url, within=60.0)
    admin = {"Authorization": f"Bearer {harness.ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1/admin", headers=admin) as client:
        # Both roles, so the office's decisions are exercised past the role check (README Roles).
        person = await client.post(
            "/departments/ops-office/people",
            json={"name": "王芳", "roles": ["responder", "supervisor"]},
        )
        issued = await client.post(
            "/departments/ops-office/api-keys", json={"person_id": person.json()["id"]}
        )
    return str(issued.json()["key"])


@pytest.fixture(scope="module")
def api(service: dict[str, str]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{service['base']}/openapi.json", config=CONFIG)


# The operations, read from the app's own document at collection time: one test each, per key.
OPERATIONS = [
    (path, method.upper())
    for path, methods in create_app().openapi()["paths"].items()
    for method in methods
]


def _exercise(
    api: schemathesis.BaseSchema,
    path: str,
    method: str,
    token: str,
    references: Sequence[str] = (),
) -> None:
    operation = api[path][method]
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )
    if references and "{reference}" in path:
        # Half the calls act on the department's real inquiries, not only on unknown ones.
        cases = st.one_of(cases, st.tuples(cases, st.sampled_from(references)).map(_on))

    @EXAMPLES
    @given(case=cases)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"})

    run()


def _on(pair: tuple[schemathesis.Case, str]) -> schemathesis.Case:
    case, reference = pair
    case.path_parameters = {**(case.path_parameters or {}), "reference": reference}
    return case


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_with_the_admin_token(api: schemathesis.BaseSchema, path: str, method: str) -> None:
    _exercise(api, path, method, harness.ADMIN_TOKEN)


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_with_a_department_key(
    api: schemathesis.BaseSchema, service: dict[str, str], path: str, method: str
) -> None:
    _exercise(api, path, method, service["key"], service["references"].split())


def test_the_document_is_served(service: dict[str, str]) -> None:
    assert httpx.get(f"{service['base']}/openapi.json").json()["openapi"].startswith("3.")
    assert Path(__file__).exists()
