"""Clients that retry and clerks who collide (issue 14): `Idempotency-Key` on every department
POST, and `If-Match` with the inquiry's version."""

import asyncio
import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import idempotency
from app.deadlines import alerts
from app.inquiries import service
from app.inquiries.models import EventAction, Inquiry, InquiryNote
from app.replies.models import Reply
from tests import factories
from tests.conftest import Clock, make_client
from tests.inquiries.test_work import _arrive, _city, auth

P = "/api/v1/inquiries"
ANSWER = {"purpose": "answer", "text": "您好，断缴3个月内可到市民中心3号窗口补缴，电话0551-12333。"}


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_retry_with_the_same_key_returns_the_first_answer_and_does_nothing_again(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    key = auth(await factories.api_key(session, hrss))
    first = await client.post(
        f"{P}/{inquiry.reference}/replies", json=ANSWER, headers=key | {"Idempotency-Key": "k-1"}
    )
    assert first.status_code == 201, first.text
    # The same request again, its JSON written differently: the same answer, no second reply.
    retry = await client.post(
        f"{P}/{inquiry.reference}/replies",
        content=json.dumps({"text": ANSWER["text"], "purpose": "answer"}, indent=2),
        headers=key | {"Idempotency-Key": "k-1", "Content-Type": "application/json"},
    )
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert await _count(session, Reply) == 1
    # Without the key, the same body is a new request: the status table refuses a second answer.
    plain = await client.post(f"{P}/{inquiry.reference}/replies", json=ANSWER, headers=key)
    assert plain.status_code == 409
    # The same key with another body, or on another route: 422, nothing done.
    other = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json=ANSWER | {"purpose": "interim"},
        headers=key | {"Idempotency-Key": "k-1"},
    )
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    elsewhere = await client.post(
        f"{P}/{inquiry.reference}/notes",
        json={"text": "已核实"},
        headers=key | {"Idempotency-Key": "k-1"},
    )
    assert elsewhere.status_code == 422
    assert await _count(session, InquiryNote) == 0
    bad = await client.post(
        f"{P}/{inquiry.reference}/notes",
        json={"text": "已核实"},
        headers=key | {"Idempotency-Key": "k" * 256},
    )
    assert bad.status_code == 422
    assert bad.json()["type"] == "/problems/bad-idempotency-key"


async def test_keys_belong_to_one_api_key_expire_and_keep_no_failure(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    first_key = auth(await factories.api_key(session, hrss))
    second_key = auth(await factories.api_key(session, hrss))
    note = {"text": "已联系社保中心"}
    for headers in (first_key, second_key):  # another API key's "n-1" is its own
        answer = await client.post(
            f"{P}/{inquiry.reference}/notes",
            json=note,
            headers=headers | {"Idempotency-Key": "n-1"},
        )
        assert answer.status_code == 201
    assert await _count(session, InquiryNote) == 2
    clock.advance(hours=25)  # kept 24 h: then the key is free again
    later = await client.post(
        f"{P}/{inquiry.reference}/notes", json=note, headers=first_key | {"Idempotency-Key": "n-1"}
    )
    assert later.status_code == 201
    assert "idempotent-replayed" not in later.headers
    assert await _count(session, InquiryNote) == 3
    # A refused request keeps nothing: once the state allows it, the same key runs.
    refused = await client.post(
        f"{P}/{inquiry.reference}/close",
        json={"reason": "已办结"},
        headers=first_key | {"Idempotency-Key": "c-1"},
    )
    assert refused.status_code == 409
    answered = await client.post(
        f"{P}/{inquiry.reference}/answer-given",
        json={
            "via": "phone",
            "given_at": clock.now.isoformat(),
            "given_by": "王芳",
            "text": "已电话告知补缴流程",
        },
        headers=first_key,
    )
    assert answered.status_code == 201, answered.text
    closed = await client.post(
        f"{P}/{inquiry.reference}/close",
        json={"reason": "已办结"},
        headers=first_key | {"Idempotency-Key": "c-1"},
    )
    assert closed.status_code == 200, closed.text


@pytest.mark.committing
async def test_two_concurrent_requests_with_one_key_answer_the_citizen_once(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    async with committing_maker() as session:
        _, hrss, _ = await _city(session)
        inquiry = await _arrive(session, "社保怎么办", "o_1")
        key = auth(await factories.api_key(session, hrss))
        await session.commit()
    async with make_client(committing_maker, clock) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{P}/{inquiry.reference}/replies",
                    json=ANSWER,
                    headers=key | {"Idempotency-Key": "same"},
                )
                for _ in range(2)
            )
        )
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json() == answers[1].json()
    async with committing_maker() as session:
        assert await _count(session, Reply) == 1


async def test_a_stale_version_answers_412_with_the_current_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    first_clerk = auth(await factories.api_key(session, hrss))
    second_clerk = auth(await factories.api_key(session, hrss))
    seen = (await client.get(f"{P}/{inquiry.reference}", headers=first_clerk)).json()["version"]
    listed = (await client.get(P, headers=second_clerk)).json()["items"][0]["version"]
    assert seen == listed > 0
    # The second clerk acts first, with the version both read.
    noted = await client.post(
        f"{P}/{inquiry.reference}/notes",
        json={"text": "我来处理"},
        headers=second_clerk | {"If-Match": f'"{listed}"'},
    )
    assert noted.status_code == 201, noted.text
    stale = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json=ANSWER,
        headers=first_clerk | {"If-Match": f'"{seen}"'},
    )
    assert stale.status_code == 412
    current = stale.json()["current_version"]
    assert current > seen
    assert await _count(session, Reply) == 0
    fresh = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json=ANSWER,
        headers=first_clerk | {"If-Match": f'W/"{current}"'},
    )
    assert fresh.status_code == 201, fresh.text
    anything = await client.post(
        f"{P}/{inquiry.reference}/notes",
        json={"text": "已答复"},
        headers=first_clerk | {"If-Match": "*"},
    )
    assert anything.status_code == 201


async def test_the_hourly_purge_forgets_answers_older_than_a_day(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    key = auth(await factories.api_key(session, hrss))
    kept = await client.post(
        f"{P}/{inquiry.reference}/notes",
        json={"text": "已核实"},
        headers=key | {"Idempotency-Key": "p-1"},
    )
    assert kept.status_code == 201
    assert await idempotency.purge(session, now=clock.now + timedelta(hours=23)) == 0
    assert await _count(session, idempotency.IdempotencyRecord) == 1
    assert await idempotency.purge(session, now=clock.now + timedelta(hours=25)) == 1
    assert await _count(session, idempotency.IdempotencyRecord) == 0


@pytest.mark.committing
async def test_the_sweep_waits_for_an_action_so_versions_follow_commit_order(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """A deadline alert is written under the inquiry's row lock, like every action: while an
    action holds the row, the sweep waits, so the action's change can never commit after a
    newer one and leave `version` (the latest change) hiding it from If-Match."""
    async with committing_maker() as session:
        _, _, _ = await _city(session)
        inquiry = await _arrive(session, "社保怎么办", "o_1")
        await session.commit()
    late = inquiry.reply_due_at + timedelta(days=3)
    async with committing_maker() as acting:
        held = await service.lock(acting, await acting.get_one(Inquiry, inquiry.id))
        service.record(acting, held, actor="test", action=EventAction.note_added)
        await acting.flush()
        sweeping = asyncio.create_task(
            alerts.sweep(
                committing_maker.begin, now=late, office_hours=("08:30", "17:30"), fractions=[0.5]
            )
        )
        await asyncio.sleep(1.0)
        assert not sweeping.done()  # it waits on the row the action holds
        mine = await service.version(acting, held)
        await acting.commit()
    assert await sweeping >= 1
    async with committing_maker() as session:
        after = await service.version(session, await session.get_one(Inquiry, inquiry.id))
        assert after > mine  # the sweep's change came last, and is the version
