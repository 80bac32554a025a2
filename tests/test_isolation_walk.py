"""Isolation, driven by the OpenAPI document (issue 13).

One test walks every department route the app documents (everything but the admin API, the
platforms' webhooks and the operational endpoints) with a cast of keys:

* `owner`: a key of the department holding the inquiry (positive control);
* `other`: a key of another department in the same city, which may not read it (404);
* `office`: the supervising office of the region, which may read but not act (403);
* `parent`: the parent of a department whose inquiry was escalated to it, which may read that
  inquiry but not act on it (403), and may not read the first department's (404);
* `revoked`: a revoked key of the owner's department (401), and no key at all (401).

Every route in the document must have a case in ROUTES, and every route in ROUTES must be in the
document: a new route cannot escape the walk, and a route this test expects cannot go missing.

Each request runs inside a savepoint that is rolled back afterwards, so every probe sees the same
seeded state, and a refused request (or any read) is checked to have changed nothing.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.api_keys import service as api_keys
from app.api_keys.schemas import ApiKeyCreate
from app.deadlines import extensions, pauses
from app.deadlines.models import AlertKind, Clock, DeadlineAlert, PauseReason
from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.main import create_app
from app.people.models import Role as PersonRole
from app.replies import service as replies
from app.routing import service as routing
from app.routing.schemas import RoutingRuleCreate
from tests import conftest, factories
from tests.conftest import ADMIN_TOKEN

# Not department routes: each has its own authentication and its own tests (the citizen's answer
# page: the reference and its query code, tests/answers).
EXCLUDED_PREFIXES = (
    "/api/v1/admin",
    "/webhooks",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/answer",
)

Role = Literal["owner", "other", "office", "parent", "revoked", "anonymous"]
Target = Literal["owned", "escalated"]  # the owner's inquiry; the one escalated to the parent
OK = frozenset({200})
REFUSED = frozenset({403})
HIDDEN = frozenset({404})
UNAUTHENTICATED = frozenset({401})
NOTHING_PENDING = frozenset({409})


@dataclass(frozen=True)
class Cast:
    """Who is in the walk, with what they may read."""

    references: dict[str, str]  # department code -> the reference of its one inquiry
    keys: dict[Role, str]
    owner_code: str
    other_code: str
    office_code: str
    parent_code: str
    child_code: str
    entry_code: str
    now: datetime
    owner_person_id: int  # a responder of the owner's department, who may sign for it

    @property
    def owned(self) -> str:
        return self.references[self.owner_code]

    @property
    def escalated(self) -> str:
        return self.references[self.child_code]

    @property
    def pending(self) -> str:
        """The other department's inquiry: a pause and an extension await the office."""
        return self.references[self.other_code]


Body = Callable[[Cast], dict[str, Any]]


def no_overrides(_: Cast) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Case:
    """What each key gets on one route. Statuses default by kind: a read is 200 for everyone who
    may read; an action is 200 for the owner and 403 for a reader."""

    kind: Literal["read", "act", "list"]
    why: str = ""
    owner: frozenset[int] = OK
    office: frozenset[int] | None = None
    parent: frozenset[int] | None = None
    body: Body = no_overrides  # overrides over the schema's examples
    # The office decides it: also probed on the other department's inquiry, where a request
    # awaits the office's decision (the office 200, the holder 403).
    office_decides: bool = False
    # List routes: further query strings, each of which must not widen what a key sees.
    queries: Callable[[Cast], list[dict[str, str]]] = lambda _: []
    # List routes: whose inquiries each role must find (the rest must be absent anyway).
    must_list: Mapping[Role, tuple[str, ...]] = field(default_factory=dict)
    # Path parameters besides {reference}, and a query string, for every probe.
    params: Callable[[Cast], dict[str, str]] = lambda _: {}
    query: Callable[[Cast], dict[str, str]] = lambda _: {}
    # Routes without {reference}, where each key acts on its own department: per role.
    each: Mapping[Role, frozenset[int]] = field(default_factory=dict)

    def expected(self, role: Role) -> frozenset[int]:
        if role == "owner":
            return self.owner
        reader = OK if self.kind != "act" else REFUSED
        if role == "office":
            return self.office if self.office is not None else reader
        if role == "parent":
            return self.parent if self.parent is not None else reader
        raise AssertionError(role)


def _transfer(cast: Cast) -> dict[str, Any]:
    return {"department_code": cast.other_code}


def _arbitrate(cast: Cast) -> dict[str, Any]:
    return {"department_code": cast.other_code, "entry_code": None}


def _refer(cast: Cast) -> dict[str, Any]:
    return {"entry_code": cast.entry_code}


def _first_response(cast: Cast) -> dict[str, Any]:
    return {"at": (cast.now - timedelta(minutes=10)).isoformat()}


def _decision(_: Cast) -> dict[str, Any]:
    return {"approve": True}


def _extension(_: Cast) -> dict[str, Any]:
    return {"working_days": 1}


def _kind(_: Cast) -> dict[str, Any]:
    return {"kind": "complaint"}  # a real change: the seeded inquiry is a consultation


def _sign_for(cast: Cast) -> dict[str, Any]:
    return {"person_id": cast.owner_person_id}  # a client system's key names the person


def _hand_over(cast: Cast) -> dict[str, Any]:
    return {"person_id": cast.owner_person_id}


def _merge(cast: Cast) -> dict[str, Any]:
    return {"into": cast.owned}  # into itself: the owner is refused (the only open one it has)


def _answer_given(cast: Cast) -> dict[str, Any]:
    return {"given_at": (cast.now - timedelta(minutes=10)).isoformat()}


CREATED = frozenset({201})


P = "/api/v1/inquiries/{reference}"
# Everyone in the city: the office reads the whole region (issue 13, "Scope").
CITY = ("owner", "other", "office", "parent", "child")

ROUTES: dict[tuple[str, str], Case] = {
    ("GET", P): Case("read"),
    ("GET", f"{P}/events"): Case("read"),
    # Who read it: a question for the supervising office only (others who may read: 403).
    ("GET", f"{P}/reads"): Case("read", owner=REFUSED, parent=REFUSED),
    ("POST", f"{P}/invalid"): Case("act"),
    ("POST", f"{P}/close"): Case(
        "act", owner=frozenset({409}), why="assigned cannot become closed (TRANSITIONS)"
    ),
    ("POST", f"{P}/routing-wrong"): Case("act", why="routed there by a rule: the owner may"),
    ("POST", f"{P}/kind"): Case("act", body=_kind),
    ("POST", f"{P}/refer"): Case("act", body=_refer),
    ("POST", f"{P}/return"): Case("act", why="within 1 working day of receipt"),
    ("POST", f"{P}/transfer"): Case("act", body=_transfer),
    ("POST", f"{P}/arbitrate"): Case(
        "act", owner=frozenset({409}), body=_arbitrate, why="no arbitration is awaited"
    ),
    ("POST", f"{P}/first-response"): Case("act", body=_first_response),
    ("POST", f"{P}/pause"): Case("act", why="awaiting_citizen stops the clock at once"),
    # The office decides pauses and extensions: it may act here, and nothing awaits a decision.
    # Everyone else who may read (the holder, the escalated parent) may not decide: 403.
    ("POST", f"{P}/pause/decision"): Case(
        "act", owner=REFUSED, office=NOTHING_PENDING, body=_decision, office_decides=True
    ),
    ("POST", f"{P}/resume"): Case("act", owner=frozenset({409}), why="the clock is not stopped"),
    ("POST", f"{P}/extension"): Case("act", body=_extension),
    ("POST", f"{P}/extension/decision"): Case(
        "act", owner=REFUSED, office=NOTHING_PENDING, body=_decision, office_decides=True
    ),
    # Issue 14: the department's work to the end.
    ("POST", f"{P}/sign-for"): Case("act", body=_sign_for),
    ("POST", f"{P}/hand-over"): Case(
        "act", owner=frozenset({409}), body=_hand_over, why="not signed for yet"
    ),
    ("POST", f"{P}/replies"): Case("act", owner=CREATED),
    ("POST", f"{P}/answer-given"): Case("act", owner=CREATED, body=_answer_given),
    ("POST", f"{P}/replies/{{reply_id}}/review"): Case(
        "act",
        owner=HIDDEN,
        params=lambda _: {"reply_id": "999999"},
        why="no such reply on it: its own 404 (reply-not-found), after the holder check",
    ),
    # Issue 15: the department resends or confirms a delivery of its replies.
    ("POST", f"{P}/deliveries/{{delivery_id}}/resend"): Case(
        "act",
        owner=HIDDEN,
        params=lambda _: {"delivery_id": "999999"},
        why="no such delivery on it: its own 404 (delivery-not-found), after the holder check",
    ),
    ("POST", f"{P}/deliveries/{{delivery_id}}/confirm"): Case(
        "act",
        owner=HIDDEN,
        params=lambda _: {"delivery_id": "999999"},
        why="no such delivery on it: its own 404 (delivery-not-found), after the holder check",
    ),
    # Issue 16: media the citizen sent, to whoever may read the inquiry.
    ("GET", f"{P}/media/{{media_id}}"): Case(
        "read",
        owner=HIDDEN,
        office=HIDDEN,
        parent=HIDDEN,
        params=lambda _: {"media_id": "999999"},
        why="no such media on it: its own 404 (media-not-found), after the read check",
    ),
    # Issue 16: the department records a call-back's outcome.
    ("POST", f"{P}/callbacks/{{callback_id}}"): Case(
        "act",
        owner=HIDDEN,
        params=lambda _: {"callback_id": "999999"},
        body=lambda _: {"reached": True, "outcome": "已回访"},
        why="no such call-back on it: its own 404 (callback-not-found), after the holder check",
    ),
    ("GET", f"{P}/draft"): Case(
        "read",
        office=REFUSED,
        parent=REFUSED,
        query=lambda _: {"template": "walk"},
        why="the holder drafts from its own templates; readers may not",
    ),
    ("POST", f"{P}/notes"): Case("act", owner=CREATED),
    ("GET", f"{P}/notes"): Case("read"),
    ("POST", f"{P}/merge"): Case(
        "act", owner=frozenset({409}), body=_merge, why="not into itself (merge-refused)"
    ),
    ("POST", f"{P}/unmerge"): Case("act", owner=frozenset({409}), why="it is not merged"),
    ("GET", f"{P}/merge-candidates"): Case(
        "read", office=REFUSED, parent=REFUSED, why="candidates are the holder's to merge"
    ),
    # Templates: each key reads and adds its own department's; only the owner has "walk".
    ("GET", "/api/v1/templates"): Case("list"),
    # Issue 16: each department's own call-backs.
    ("GET", "/api/v1/callbacks"): Case("list"),
    ("POST", "/api/v1/templates"): Case(
        "act", each=dict.fromkeys(("owner", "other", "office", "parent"), CREATED)
    ),
    ("PATCH", "/api/v1/templates/{code}"): Case(
        "act",
        params=lambda _: {"code": "walk"},
        each={"owner": OK, "other": HIDDEN, "office": HIDDEN, "parent": HIDDEN},
    ),
    ("GET", "/api/v1/escalations"): Case(
        "list", must_list={"office": ("child",), "parent": ("child",)}
    ),
    ("GET", "/api/v1/inquiries"): Case(
        "list",
        must_list={"owner": ("owner",), "other": ("other",), "office": CITY, "parent": CITY[3:]},
        # An office's queue filters, and text search, asked by keys that may not see it all.
        queries=lambda cast: [
            {"holder": cast.owner_code},
            {"q": "社保"},
            {"fallback": "true"},
            {"overdue": "true"},
            {"delivery": "failed"},
        ],
    ),
    ("GET", "/api/v1/inquiries/changes"): Case(
        "list",
        must_list={"owner": ("owner",), "other": ("other",), "office": CITY, "parent": CITY[3:]},
    ),
}

# Whose inquiries each key may see anywhere (lists, feeds, one inquiry).
MAY_SEE: dict[Role, tuple[str, ...]] = {
    "owner": ("owner",),
    "other": ("other",),
    "office": CITY,
    "parent": ("parent", "child"),
    "revoked": (),
    "anonymous": (),
}


# -- the request body, from the schema's examples ---------------------------------------------

MISSING = object()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rpartition("/")[2]
        schema = document["components"]["schemas"][name]
    return schema


def _example(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    schema = _resolve(document, schema)
    if schema.get("examples"):
        return schema["examples"][0]
    if "example" in schema:
        return schema["example"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for option in schema.get("anyOf", []):
        value = _example(document, option)
        if value is not MISSING:
            return value
    return MISSING


def request_body(
    document: dict[str, Any], operation: dict[str, Any], overrides: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[str]]:
    """A body built from the schema's examples (then the case's overrides); the required fields
    neither gives are returned as problems, so a new body field needs a thought."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None, [f"body overrides {sorted(overrides)} for an operation without a body"] * bool(
            overrides
        )
    schema = _resolve(document, content["schema"])
    required = set(schema.get("required", []))
    body: dict[str, Any] = {}
    problems = []
    for name, prop in schema.get("properties", {}).items():
        value = overrides[name] if name in overrides else _example(document, prop)
        if value is MISSING:
            if name in required:
                problems.append(f"required body field {name!r} has no example and no override")
            continue
        body[name] = value
    if unknown := set(overrides) - set(schema.get("properties", {})):
        problems.append(f"overrides for fields the schema lacks: {sorted(unknown)}")
    return body, problems


# -- the cast -----------------------------------------------------------------------------------

CITIZENS = {
    "owner": "oyORnuP8q7ou2gfYjqLzSIWZf0rs",  # factories.inquiry's default
    "other": "oyORnuP8q7ou2gfYjqLzSIWZf0rB",
    "office": "oyORnuP8q7ou2gfYjqLzSIWZf0rO",
    "parent": "oyORnuP8q7ou2gfYjqLzSIWZf0rP",
    "child": "oyORnuP8q7ou2gfYjqLzSIWZf0rC",
}
# What each department's citizen writes, and the routing rule's keyword that sends it there.
TEXTS = {
    "owner": ("社保", "社保断缴了怎么补缴？"),
    "other": ("公交", "公交车晚点太久了"),
    "parent": ("噪音", "工地夜间噪音扰民"),
    "child": ("路灯", "小区路灯坏了一个月"),
    "office": (None, "你好，请问一件事"),  # no rule: the account's owner (the office) triages
}
WECHAT_TOKEN = "spamtest"
WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


async def seed(session: AsyncSession, now: datetime) -> tuple[Cast, dict[str, str]]:
    """Departments, routed inquiries, an escalation and the keys; returns the cast and the
    citizen's platform id per reference."""
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    departments: dict[str, Department] = {
        "office": office,
        "owner": await factories.department(session, "hefei-hrss"),
        "other": await factories.department(session, "hefei-transport"),
    }
    departments["parent"] = await factories.department(session, "hefei-urban")
    departments["child"] = await factories.department(
        session, "hefei-urban-lighting", parent_code="hefei-urban"
    )
    account = await factories.account(
        session, office, wechat_token=WECHAT_TOKEN, wechat_encoding_aes_key=WECHAT_AES_KEY
    )
    entry = await factories.court(session)
    for priority, (role, (keyword, _)) in enumerate(TEXTS.items()):
        if keyword is not None:
            await routing.create_rule(
                session,
                data=RoutingRuleCreate(
                    name=f"walk-{role}",
                    priority=priority,
                    keywords=[keyword],
                    department_code=departments[role].code,
                    explanation=f"{keyword}属于{departments[role].name}职责",
                ),
            )
    await session.flush()

    inquiries: dict[str, Inquiry] = {}
    for role, (_, content) in TEXTS.items():
        opened = await factories.inquiry(
            session, account, citizen_id=CITIZENS[role], content=content
        )
        assert await routing.route(
            session, inquiry_id=opened.id, now=opened.received_at, keywords=[]
        )
        await session.flush()
        await session.refresh(opened)
        assert opened.department_id == departments[role].id, (role, opened.routing_explanation)
        inquiries[role] = opened

    # The child's inquiry is overdue and escalated to its parent, which may now read it.
    escalated = inquiries["child"]
    escalated.reply_due_at = now - timedelta(hours=1)
    session.add(
        DeadlineAlert(
            inquiry_id=escalated.id,
            clock=Clock.reply,
            kind=AlertKind.escalation,
            level=1,
            department_id=departments["parent"].id,
            fired_at=now - timedelta(minutes=30),
        )
    )

    # The other department asks the office for a pause and for more time.
    pending = inquiries["other"]
    asking: dict[str, Any] = {
        "actor": "client:walk (hefei-transport)",
        "person_id": None,
        "details": {},
    }
    await pauses.start_pause(
        session,
        pending,
        reason=PauseReason.consulting_agency,
        note="正式征求市场监管局意见",
        now=now,
        max_count=2,
        **asking,
    )
    await extensions.request_extension(
        session, pending, working_days=1, reason="需现场核查，涉及多个部门", now=now, **asking
    )

    responder = await factories.person(
        session, departments["owner"], "王芳", roles=[PersonRole.responder]
    )
    await replies.create_template(
        session,
        departments["owner"],
        code="walk",
        title="答复",
        body="您好，编号{reference}的留言已由{department}办理：【请填写处理结果】。",
    )

    keys: dict[Role, str] = {
        "owner": await factories.api_key(session, departments["owner"]),
        "other": await factories.api_key(session, departments["other"]),
        "office": await factories.api_key(session, departments["office"]),
        "parent": await factories.api_key(session, departments["parent"]),
    }
    revoked, keys["revoked"] = await api_keys.issue(
        session,
        departments["owner"],
        data=ApiKeyCreate(client_name="revoked-client", roles=list(factories.ACTING_ROLES)),
    )
    await api_keys.revoke(session, key_id=revoked.id, now=now - timedelta(minutes=1))

    cast = Cast(
        references={departments[role].code: inquiries[role].reference for role in inquiries},
        keys=keys,
        owner_code=departments["owner"].code,
        other_code=departments["other"].code,
        office_code=office.code,
        parent_code=departments["parent"].code,
        child_code=departments["child"].code,
        entry_code=entry.code,
        now=now,
        owner_person_id=responder.id,
    )
    return cast, {i.reference: i.citizen_id for i in inquiries.values()}


def role_codes(cast: Cast) -> dict[str, str]:
    return {
        "owner": cast.owner_code,
        "other": cast.other_code,
        "office": cast.office_code,
        "parent": cast.parent_code,
        "child": cast.child_code,
    }


# -- probing ----------------------------------------------------------------------------------

FINGERPRINT = """
    SELECT (SELECT array_agg(ROW(id, status, department_id, kind, reply_due_at,
                                 first_responded_at, routing_marked_wrong_at) ORDER BY id)::text
              FROM inquiry),
           (SELECT count(*) FROM inquiry_event),
           (SELECT count(*) FROM deadline_pause),
           (SELECT count(*) FROM deadline_extension),
           (SELECT count(*) FROM inquiry_assignment)
"""


async def fingerprint(connection: AsyncConnection) -> tuple[Any, ...]:
    """What an action changes; a refused request or a read must leave it as it was."""
    row = (await connection.execute(text(FINGERPRINT))).one()
    changes = await connection.scalar(text("SELECT to_regclass('inquiry_change') IS NOT NULL"))
    feed = await connection.scalar(text("SELECT count(*) FROM inquiry_change")) if changes else None
    return (*row, feed)


@dataclass
class Walk:
    client: httpx.AsyncClient
    connection: AsyncConnection
    cast: Cast
    secrets: dict[str, str]  # what must never appear, by what it is
    failures: list[str] = field(default_factory=list)
    probes: int = 0

    async def probe(
        self,
        label: str,
        method: str,
        url: str,
        role: Role,
        body: dict[str, Any] | None,
        expected: frozenset[int],
    ) -> httpx.Response:
        """One request in a savepoint that is rolled back; records what went wrong."""
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {self.cast.keys[role]}"}
        savepoint = await self.connection.begin_nested()
        try:
            before = await fingerprint(self.connection)
            response = await self.client.request(method, url, headers=headers, json=body)
            after = await fingerprint(self.connection)
        finally:
            await savepoint.rollback()
        self.probes += 1
        where = f"{label} as {role}: {method} {url}"
        if response.status_code not in expected:
            self.failures.append(
                f"{where} -> {response.status_code}, expected {sorted(expected)}: "
                f"{response.text[:300]}"
            )
        if (method == "GET" or response.status_code >= 300) and before != after:
            self.failures.append(
                f"{where} -> {response.status_code} changed state: {before} -> {after}"
            )
        for what, secret in self.secrets.items():
            if secret in response.text or secret in str(response.headers):
                self.failures.append(f"{where} -> {response.status_code} shows {what}")
        return response

    def check_listing(self, label: str, role: Role, response: httpx.Response, case: Case) -> None:
        """A list or feed shows a key only the inquiries it may see, and those it must."""
        if response.status_code != 200:
            return
        codes = role_codes(self.cast)
        allowed = {self.cast.references[codes[r]] for r in MAY_SEE[role]}
        for reference in self.cast.references.values():
            if reference not in allowed and reference in response.text:
                self.failures.append(f"{label} as {role}: lists {reference}, not its to see")
        for whose in case.must_list.get(role, ()):
            reference = self.cast.references[codes[whose]]
            if reference not in response.text:
                self.failures.append(
                    f"{label} as {role}: does not list {reference} ({whose}'s), which it may see"
                )


@pytest.mark.committing
async def test_every_department_route_keeps_departments_apart(
    committing_maker: async_sessionmaker[AsyncSession], clock: conftest.Clock
) -> None:
    """Seeded with real commits, so the change feed (which hands out only settled
    transactions) has something to show; the walk itself runs in one transaction."""
    clock.advance(hours=1)  # an hour after the citizens wrote (Tuesday 11:00 in Beijing)
    async with committing_maker.begin() as session:
        cast, citizens = await seed(session, clock.now)
    engine = committing_maker.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    async with engine.connect() as connection:
        transaction = await connection.begin()
        walk_maker = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        async with conftest.make_client(walk_maker, clock) as client:
            await _walk(client, connection, cast, citizens)
        await transaction.rollback()


async def _walk(
    client: httpx.AsyncClient, connection: AsyncConnection, cast: Cast, citizens: dict[str, str]
) -> None:
    secrets = {f"the {role} key": key for role, key in cast.keys.items()}
    secrets |= {
        "the account's wechat_token": WECHAT_TOKEN,
        "the account's encoding AES key": WECHAT_AES_KEY,
        "the admin token": ADMIN_TOKEN,
    }
    secrets |= {f"the platform id of {ref}'s citizen": cid for ref, cid in citizens.items()}
    walk = Walk(client, connection, cast, secrets)

    document = create_app().openapi()
    documented = {
        (method.upper(), path): operation
        for path, operations in document["paths"].items()
        if not path.startswith(EXCLUDED_PREFIXES)
        for method, operation in operations.items()
    }
    for method, path in sorted(set(documented) - set(ROUTES)):
        walk.failures.append(
            f"{method} {path} is in the OpenAPI document but has no case in ROUTES: "
            "add one (statuses per role, body) so isolation is checked on it"
        )
    for method, path in sorted(set(ROUTES) - set(documented)):
        walk.failures.append(f"expected route {method} {path} is missing from the OpenAPI document")

    walked = []
    for (method, path), case in sorted(ROUTES.items()):
        operation = documented.get((method, path))
        if operation is None:
            continue
        label = f"{method} {path}"
        body, problems = request_body(document, operation, case.body(cast))
        walk.failures.extend(f"{label}: {problem}" for problem in problems)
        filled = path
        for name, value in case.params(cast).items():
            filled = filled.replace(f"{{{name}}}", value)
        if case.query(cast):
            filled = f"{filled}?{urlencode(case.query(cast))}"
        if unknown := set(re.findall(r"{(\w+)}", filled)) - {"reference"}:
            walk.failures.append(f"{label}: no value for path parameters {sorted(unknown)}")
            continue
        walked.append(label)
        if "{reference}" in path:
            owned = filled.replace("{reference}", cast.owned)
            escalated = filled.replace("{reference}", cast.escalated)
            probes: list[tuple[Role, str, frozenset[int]]] = [
                ("owner", owned, case.expected("owner")),
                ("other", owned, HIDDEN),
                ("office", owned, case.expected("office")),
                ("parent", escalated, case.expected("parent")),
                ("parent", owned, HIDDEN),
                ("other", escalated, HIDDEN),
                ("owner", filled.replace("{reference}", cast.pending), HIDDEN),
                ("revoked", owned, UNAUTHENTICATED),
                ("anonymous", owned, UNAUTHENTICATED),
            ]
            if case.office_decides:
                pending = filled.replace("{reference}", cast.pending)
                probes += [("office", pending, OK), ("other", pending, REFUSED)]
            for role, url, expected in probes:
                await walk.probe(label, method, url, role, body, expected)
        else:
            for role in ("owner", "other", "office", "parent"):
                expected = case.each.get(role, OK)
                response = await walk.probe(label, method, filled, role, body, expected)
                walk.check_listing(label, role, response, case)
                for query in case.queries(cast):
                    url = f"{path}?{urlencode(query)}"
                    response = await walk.probe(label, method, url, role, body, OK)
                    walk.check_listing(f"{label}?{urlencode(query)}", role, response, Case("list"))
            for role in ("revoked", "anonymous"):
                await walk.probe(label, method, filled, role, body, UNAUTHENTICATED)

    report = "\n".join(walk.failures)
    assert not walk.failures, (
        f"{len(walk.failures)} isolation failures in {walk.probes} requests over "
        f"{len(walked)} routes:\n{report}"
    )
    assert walk.probes >= 9 * 16, walked  # the walk really walked
