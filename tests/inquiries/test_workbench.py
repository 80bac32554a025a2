"""A department works its inquiries to the end (issue 14): sign for, hand over, notes, replies
with quality checks and a reviewer for public comments, answers given elsewhere, templates,
merges, close; and the 409 that lists what is allowed now. All through the API."""

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.models import DeadlineAlert
from app.inquiries.models import Channel, Inquiry, InquiryEvent
from app.people.models import Role
from app.replies.models import Reply
from tests import factories
from tests.conftest import ADMIN_TOKEN, Clock
from tests.deadlines.test_alerts import sweep
from tests.inquiries.test_work import _arrive, _city, auth

P = "/api/v1/inquiries"


async def _people(session: AsyncSession, department: Any) -> tuple[Any, Any, dict[str, str]]:
    """A responder and a reviewer of `department`, with their keys."""
    responder = await factories.person(session, department, "王芳", roles=[Role.responder])
    reviewer = await factories.person(
        session, department, "李强", roles=[Role.responder, Role.reviewer]
    )
    keys = {
        "responder": await factories.api_key(session, department, responder),
        "reviewer": await factories.api_key(session, department, reviewer),
    }
    return responder, reviewer, keys


async def test_signing_for_never_moves_a_deadline_and_hands_over_to_a_colleague(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    office, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    responder, reviewer, keys = await _people(session, hrss)
    client_key = auth(await factories.api_key(session, hrss))
    due = inquiry.reply_due_at
    unsigned = await client.get(f"{P}?unsigned=true", headers=auth(keys["responder"]))
    assert [i["reference"] for i in unsigned.json()["items"]] == [inquiry.reference]
    # A client system's key must name the person; a person's key signs for its own person.
    nameless = await client.post(f"{P}/{inquiry.reference}/sign-for", json={}, headers=client_key)
    assert nameless.status_code == 422, nameless.text
    assert nameless.json()["type"] == "/problems/person-required"
    signed = await client.post(
        f"{P}/{inquiry.reference}/sign-for", json={}, headers=auth(keys["responder"])
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed_by"] == "王芳"
    assert signed.json()["clock"]["reply_due_at"] == due.isoformat().replace("+00:00", "Z")
    again = await client.post(
        f"{P}/{inquiry.reference}/sign-for", json={}, headers=auth(keys["reviewer"])
    )
    assert again.status_code == 409
    assert again.json()["type"] == "/problems/already-signed"
    signed_list = await client.get(f"{P}?unsigned=false", headers=auth(keys["responder"]))
    assert [i["reference"] for i in signed_list.json()["items"]] == [inquiry.reference]
    # Hand over to a colleague; never to someone of another department.
    stranger = await factories.person(session, office, "赵六", roles=[Role.responder])
    refused = await client.post(
        f"{P}/{inquiry.reference}/hand-over",
        json={"person_id": stranger.id},
        headers=auth(keys["responder"]),
    )
    assert refused.status_code == 422
    operator = await factories.person(session, hrss, "钱七", roles=[Role.operator])
    not_a_responder = await client.post(
        f"{P}/{inquiry.reference}/hand-over",
        json={"person_id": operator.id},
        headers=auth(keys["responder"]),
    )
    assert not_a_responder.status_code == 422
    assert not_a_responder.json()["type"] == "/problems/not-a-colleague"
    handed = await client.post(
        f"{P}/{inquiry.reference}/hand-over",
        json={"person_id": reviewer.id, "note": "李强负责社保"},
        headers=auth(keys["responder"]),
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["signed_by"] == "李强"
    events = await client.get(f"{P}/{inquiry.reference}/events", headers=client_key)
    actions = [e["action"] for e in events.json()["items"]]
    assert actions[-2:] == ["signed_for", "handed_over"]
    signed_event = next(e for e in events.json()["items"] if e["action"] == "signed_for")
    assert signed_event["actor"].startswith(f"person:{responder.id} 王芳")


async def test_an_inquiry_unsigned_past_a_working_half_day_joins_the_offices_queue(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    office, hrss, _ = await _city(session)
    clock.now = clock.now.replace(hour=1)  # Tuesday 09:00 in Beijing
    late = await _arrive(session, "社保怎么办", "o_1")
    office_key = auth(await factories.api_key(session, office))

    async def queue() -> list[str]:
        answer = await client.get(f"{P}?sign_overdue=true", headers=office_key)
        assert answer.status_code == 200, answer.text
        return [item["reference"] for item in answer.json()["items"]]

    clock.now = late.received_at + timedelta(hours=4)  # 13:00: 4 h of office time at most
    assert await queue() == []
    clock.now = late.received_at + timedelta(hours=5)  # 14:00, past 4.5 office hours
    assert await queue() == [late.reference]
    # Signed for, it leaves the queue.
    _, _, keys = await _people(session, hrss)
    signed = await client.post(
        f"{P}/{late.reference}/sign-for", json={}, headers=auth(keys["responder"])
    )
    assert signed.status_code == 200
    assert await queue() == []


async def test_a_private_answer_is_queued_and_the_inquiry_is_replied_then_closed(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保断缴怎么补缴", "o_1")
    _, _, keys = await _people(session, hrss)
    key = auth(keys["responder"])
    close_early = await client.post(
        f"{P}/{inquiry.reference}/close", json={"reason": "已办结"}, headers=key
    )
    assert close_early.status_code == 409
    assert "close" not in close_early.json()["allowed_actions"]
    interim = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={
            "purpose": "interim",
            "text": "您好，您反映的补缴问题已在核实缴费记录，预计3个工作日内答复。",
        },
        headers=key,
    )
    assert interim.status_code == 201, interim.text
    assert interim.json()["status"] == "queued"
    view = (await client.get(f"{P}/{inquiry.reference}", headers=key)).json()
    assert view["status"] == "assigned"
    assert view["clock"]["first_responded_at"] is not None
    answer = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={
            "purpose": "answer",
            "text": "您好，断缴3个月内可携带身份证到市民中心3号窗口补缴，咨询电话0551-12333。",
        },
        headers=key,
    )
    assert answer.status_code == 201, answer.text
    view = (await client.get(f"{P}/{inquiry.reference}", headers=key)).json()
    assert view["status"] == "replied"
    assert [r["purpose"] for r in view["replies"]] == ["interim", "answer"]
    # 办结 waits for the answer to reach the citizen: not yet delivered (nor given elsewhere).
    undelivered = await client.post(
        f"{P}/{inquiry.reference}/close", json={"reason": "已答复办结"}, headers=key
    )
    assert undelivered.status_code == 409
    assert undelivered.json()["type"] == "/problems/answer-not-delivered"
    called = await client.post(
        f"{P}/{inquiry.reference}/answer-given",
        json={
            "via": "phone",
            "given_at": clock.now.isoformat(),
            "given_by": "王芳",
            "text": "已电话告知补缴流程",
        },
        headers=key,
    )
    assert called.status_code == 201, called.text
    closed = await client.post(
        f"{P}/{inquiry.reference}/close", json={"reason": "已答复办结"}, headers=key
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    # An ended inquiry: the 409 lists what is allowed now.
    more = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={"purpose": "answer", "text": "补充说明：补缴可在网上办理，具体见合肥人社网站。"},
        headers=key,
    )
    assert more.status_code == 409
    assert more.json()["allowed_actions"] == ["note"]


async def test_a_reply_that_fails_the_checks_is_refused_with_every_reason(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    key = auth(await factories.api_key(session, hrss))
    stock = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={"purpose": "answer", "text": "您好，已收到！"},
        headers=key,
    )
    assert stock.status_code == 422
    assert [e["check"] for e in stock.json()["errors"]] == ["stock_phrase"]
    several = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={"purpose": "answer", "text": "您好，【请填写处理结果】" + "详" * 600},
        headers=key,
    )
    assert several.status_code == 422
    checks = [e["check"] for e in several.json()["errors"]]
    assert checks == ["placeholder", "too_long"]
    assert "600" in several.json()["errors"][1]["detail"]
    # Nothing was stored, nothing changed.
    assert await session.scalar(select(func.count()).select_from(Reply)) == 0
    view = (await client.get(f"{P}/{inquiry.reference}", headers=key)).json()
    assert view["status"] == "assigned"


async def test_a_public_reply_waits_for_a_second_persons_approval(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    office, hrss, _ = await _city(session)
    account = await factories.account(session, office)
    comment = await factories.inquiry(
        session, account, content="社保怎么补缴", citizen_id="o_c", channel=Channel.comment
    )
    from app.routing import service as routing

    assert await routing.route(session, inquiry_id=comment.id, now=comment.received_at, keywords=[])
    responder, reviewer, keys = await _people(session, hrss)
    # A citizen's mobile number on a public comment is refused; the hotline is fine.
    leaking = await client.post(
        f"{P}/{comment.reference}/replies",
        json={"purpose": "answer", "text": "请联系经办人13812345678办理补缴。"},
        headers=auth(keys["responder"]),
    )
    assert leaking.status_code == 422
    assert leaking.json()["errors"][0]["excerpt"] == "138****5678"
    # The department's own published number is allowed (set through the admin API).
    published = await client.patch(
        f"/api/v1/admin/departments/{hrss.code}",
        json={"published_contacts": ["139-0000-1111"]},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert published.status_code == 200, published.text
    assert published.json()["published_contacts"] == ["139-0000-1111"]
    submitted = await client.post(
        f"{P}/{comment.reference}/replies",
        json={
            "purpose": "answer",
            "text": "您好，补缴请到市民中心3号窗口办理，咨询电话12333或13900001111。",
        },
        headers=auth(keys["responder"]),
    )
    assert submitted.status_code == 201, submitted.text
    reply = submitted.json()
    assert reply["status"] == "awaiting_approval"
    second = await client.post(
        f"{P}/{comment.reference}/replies",
        json={"purpose": "answer", "text": "您好，也可在皖事通App办理补缴，咨询电话12333。"},
        headers=auth(keys["responder"]),
    )
    assert second.status_code == 409
    assert second.json()["type"] == "/problems/answer-pending"
    view = (await client.get(f"{P}/{comment.reference}", headers=auth(keys["reviewer"]))).json()
    assert view["status"] == "assigned"  # not replied until approved
    # The author may not approve their own reply, even holding the reviewer role.
    self_review = await client.post(
        f"{P}/{comment.reference}/replies/{reply['id']}/review",
        json={"approve": True},
        headers=auth(keys["responder"]),
    )
    assert self_review.status_code == 403  # the responder lacks the reviewer role
    client_review = await client.post(
        f"{P}/{comment.reference}/replies/{reply['id']}/review",
        json={"approve": True},
        headers=auth(await factories.api_key(session, hrss)),
    )
    assert client_review.status_code == 403
    assert client_review.json()["type"] == "/problems/second-person-required"
    no_note = await client.post(
        f"{P}/{comment.reference}/replies/{reply['id']}/review",
        json={"approve": False},
        headers=auth(keys["reviewer"]),
    )
    assert no_note.status_code == 422
    approved = await client.post(
        f"{P}/{comment.reference}/replies/{reply['id']}/review",
        json={"approve": True, "note": "同意"},
        headers=auth(keys["reviewer"]),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "queued"
    assert approved.json()["reviewed_by"].startswith(f"person:{reviewer.id}")
    view = (await client.get(f"{P}/{comment.reference}", headers=auth(keys["reviewer"]))).json()
    assert view["status"] == "replied"
    again = await client.post(
        f"{P}/{comment.reference}/replies/{reply['id']}/review",
        json={"approve": True},
        headers=auth(keys["reviewer"]),
    )
    assert again.status_code == 409
    del responder


async def test_an_answer_given_by_phone_is_recorded_and_replies(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    key = auth(await factories.api_key(session, hrss))
    future = await client.post(
        f"{P}/{inquiry.reference}/answer-given",
        json={
            "via": "phone",
            "given_at": (clock.now + timedelta(hours=1)).isoformat(),
            "given_by": "王芳",
            "text": "已电话告知补缴流程",
        },
        headers=key,
    )
    assert future.status_code == 422
    given = await client.post(
        f"{P}/{inquiry.reference}/answer-given",
        json={
            "via": "phone",
            "given_at": clock.now.isoformat(),
            "given_by": "王芳",
            "text": "已电话告知补缴流程和材料",
        },
        headers=key,
    )
    assert given.status_code == 201, given.text
    assert (given.json()["status"], given.json()["given_via"]) == ("given", "phone")
    view = (await client.get(f"{P}/{inquiry.reference}", headers=key)).json()
    assert view["status"] == "replied"


async def test_templates_fill_variables_and_a_left_placeholder_is_refused(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    _, _, keys = await _people(session, hrss)
    body = "您好，您的留言（编号{reference}）已由{department}办理：【请填写处理结果】。答复期限{due_date}。"
    template = {"code": "answer", "title": "答复", "body": body}
    by_responder = await client.post(
        "/api/v1/templates", json=template, headers=auth(keys["responder"])
    )
    assert by_responder.status_code == 403
    bad = await client.post(
        "/api/v1/templates",
        json=template | {"body": "编号{reference}，{citizen}"},
        headers=auth(keys["reviewer"]),
    )
    assert bad.status_code == 422
    created = await client.post("/api/v1/templates", json=template, headers=auth(keys["reviewer"]))
    assert created.status_code == 201, created.text
    draft = await client.get(
        f"{P}/{inquiry.reference}/draft?template=answer", headers=auth(keys["responder"])
    )
    assert draft.status_code == 200, draft.text
    text = draft.json()["text"]
    assert inquiry.reference in text
    assert hrss.name in text
    assert "年" in text.split("答复期限")[1]
    assert draft.json()["placeholders"] == ["【请填写处理结果】"]
    unfilled = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={"purpose": "answer", "text": text},
        headers=auth(keys["responder"]),
    )
    assert unfilled.status_code == 422
    assert unfilled.json()["errors"][0]["check"] == "placeholder"
    filled = text.replace("【请填写处理结果】", "断缴3个月内可到市民中心3号窗口补缴")
    sent = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={"purpose": "answer", "text": filled},
        headers=auth(keys["responder"]),
    )
    assert sent.status_code == 201, sent.text
    retired = await client.patch(
        "/api/v1/templates/answer", json={"active": False}, headers=auth(keys["reviewer"])
    )
    assert retired.json()["active"] is False
    gone = await client.get(
        f"{P}/{inquiry.reference}/draft?template=answer", headers=auth(keys["responder"])
    )
    assert gone.status_code == 404


async def test_notes_are_for_colleagues_and_readers_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    office, hrss, urban = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    key = auth(await factories.api_key(session, hrss))
    added = await client.post(
        f"{P}/{inquiry.reference}/notes", json={"text": "已联系社保中心核实"}, headers=key
    )
    assert added.status_code == 201, added.text
    office_key = auth(await factories.api_key(session, office))
    assert (
        await client.post(
            f"{P}/{inquiry.reference}/notes", json={"text": "督办"}, headers=office_key
        )
    ).status_code == 403
    read = await client.get(f"{P}/{inquiry.reference}/notes", headers=office_key)
    assert [n["text"] for n in read.json()] == ["已联系社保中心核实"]
    other = await client.get(
        f"{P}/{inquiry.reference}/notes", headers=auth(await factories.api_key(session, urban))
    )
    assert other.status_code == 404
    # A note is never a reply.
    assert await session.scalar(select(func.count()).select_from(Reply)) == 0


async def test_a_merged_repeat_ends_counts_in_no_figure_and_is_undone_the_same_day(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    _, hrss, _ = await _city(session)
    first = await _arrive(session, "社保断缴了怎么补缴，我在合肥工作三年", "o_1")
    repeat = await _arrive(session, "社保断缴了怎么补缴？在合肥工作三年了", "o_2")
    first.accepts_messages = False  # the conversation window passed: a new inquiry opens
    await session.flush()
    same_citizen = await _arrive(session, "社保卡丢了怎么办", "o_1")
    unrelated = await _arrive(session, "社保基数怎么算", "o_3")
    key = auth(await factories.api_key(session, hrss))
    candidates = await client.get(f"{P}/{repeat.reference}/merge-candidates", headers=key)
    assert candidates.status_code == 200, candidates.text
    found = {c["reference"]: c for c in candidates.json()}
    assert found[first.reference]["similarity"] >= 60
    assert unrelated.reference not in found
    citizen = await client.get(f"{P}/{first.reference}/merge-candidates", headers=key)
    assert {c["reference"]: c["same_citizen"] for c in citizen.json()}[same_citizen.reference]
    # Merge the repeat into the first.
    merged = await client.post(
        f"{P}/{repeat.reference}/merge",
        json={"into": first.reference, "reason": "同一事项重复反映"},
        headers=key,
    )
    assert merged.status_code == 200, merged.text
    assert (merged.json()["status"], merged.json()["merged_into"]) == ("merged", first.reference)
    into_itself = await client.post(
        f"{P}/{first.reference}/merge",
        json={"into": first.reference, "reason": "误操作测试"},
        headers=key,
    )
    assert into_itself.status_code == 409
    # Past every due time: the merged one is in no overdue figure and never warned about.
    clock.now = repeat.received_at + timedelta(days=40)
    overdue = await client.get(f"{P}?overdue=true&limit=200", headers=key)
    late = [i["reference"] for i in overdue.json()["items"]]
    assert first.reference in late
    assert repeat.reference not in late
    await sweep(session, clock.now)
    warned = await session.scalar(
        select(func.count()).select_from(DeadlineAlert).where(DeadlineAlert.inquiry_id == repeat.id)
    )
    assert warned == 0
    # The next day, the merge stands.
    next_day = await client.post(
        f"{P}/{repeat.reference}/unmerge", json={"reason": "并错了"}, headers=key
    )
    assert next_day.status_code == 409
    assert next_day.json()["type"] == "/problems/merge-refused"


async def test_unmerge_the_same_day_restores_the_status(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    _, hrss, _ = await _city(session)
    first = await _arrive(session, "社保断缴了怎么补缴", "o_1")
    repeat = await _arrive(session, "社保断缴怎么补缴", "o_2")
    key = auth(await factories.api_key(session, hrss))
    assert (
        await client.post(
            f"{P}/{repeat.reference}/merge",
            json={"into": first.reference, "reason": "重复反映"},
            headers=key,
        )
    ).status_code == 200
    clock.advance(hours=3)
    undone = await client.post(
        f"{P}/{repeat.reference}/unmerge", json={"reason": "并错了"}, headers=key
    )
    assert undone.status_code == 200, undone.text
    assert (undone.json()["status"], undone.json()["merged_into"]) == ("assigned", None)
    actions = [
        e.action
        for e in await session.scalars(
            select(InquiryEvent).where(InquiryEvent.inquiry_id == first.id)
        )
    ]
    assert "merged" in actions
    assert "unmerged" in actions


async def test_a_reply_awaiting_review_is_withdrawn_when_the_inquiry_changes_hands(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """Found in review: a public reply written by one department stayed pending after a
    transfer; the new holder's reviewer could approve it, and its own answer was a 409."""
    office, hrss, urban = await _city(session)
    account = await factories.account(session, office)
    comment = await factories.inquiry(
        session, account, content="社保怎么补缴", citizen_id="o_c", channel=Channel.comment
    )
    from app.routing import service as routing

    assert await routing.route(session, inquiry_id=comment.id, now=comment.received_at, keywords=[])
    _, _, keys = await _people(session, hrss)
    _, _, urban_keys = await _people(session, urban)
    pending = await client.post(
        f"{P}/{comment.reference}/replies",
        json={"purpose": "answer", "text": "您好，补缴请到市民中心3号窗口办理，咨询电话12333。"},
        headers=auth(keys["responder"]),
    )
    assert pending.status_code == 201
    moved = await client.post(
        f"{P}/{comment.reference}/transfer",
        json={"department_code": urban.code, "note": "属城管职责"},
        headers=auth(keys["responder"]),
    )
    assert moved.status_code == 200, moved.text
    view = await client.get(f"{P}/{comment.reference}", headers=auth(urban_keys["reviewer"]))
    assert [r["status"] for r in view.json()["replies"]] == ["withdrawn"]
    stale = await client.post(
        f"{P}/{comment.reference}/replies/{pending.json()['id']}/review",
        json={"approve": True},
        headers=auth(urban_keys["reviewer"]),
    )
    assert stale.status_code == 409
    own = await client.post(
        f"{P}/{comment.reference}/replies",
        json={"purpose": "answer", "text": "您好，该问题由城管部门处理，请拨打12319反映。"},
        headers=auth(urban_keys["responder"]),
    )
    assert own.status_code == 201, own.text


async def test_an_answer_given_at_an_impossible_time_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    """Found in review: a time without an offset was a 500; one before the inquiry arrived
    was accepted."""
    _, hrss, _ = await _city(session)
    inquiry = await _arrive(session, "社保怎么办", "o_1")
    key = auth(await factories.api_key(session, hrss))
    body = {"via": "phone", "given_by": "王芳", "text": "已电话告知补缴流程"}
    naive = await client.post(
        f"{P}/{inquiry.reference}/answer-given",
        json=body | {"given_at": "2026-11-24T01:00:00"},
        headers=key,
    )
    assert naive.status_code == 422
    before = await client.post(
        f"{P}/{inquiry.reference}/answer-given",
        json=body | {"given_at": (inquiry.received_at - timedelta(hours=1)).isoformat()},
        headers=key,
    )
    assert before.status_code == 422
    first_naive = await client.post(
        f"{P}/{inquiry.reference}/first-response",
        json={"channel": "phone", "at": "2026-11-24T01:00:00", "note": "已电话联系"},
        headers=key,
    )
    assert first_naive.status_code == 422


async def test_a_merge_strands_nothing(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    """Found in review: a merge left the office's pending decision unseen, and chains of
    merges pointed repeats at a merged inquiry."""
    _, hrss, _ = await _city(session)
    a = await _arrive(session, "社保断缴了怎么补缴", "o_1")
    b = await _arrive(session, "社保断缴怎么补缴", "o_2")
    c = await _arrive(session, "社保断缴能补缴吗", "o_3")
    key = auth(await factories.api_key(session, hrss))

    async def merge(repeat: Inquiry, into: Inquiry) -> httpx.Response:
        return await client.post(
            f"{P}/{repeat.reference}/merge",
            json={"into": into.reference, "reason": "同一事项重复反映"},
            headers=key,
        )

    asked = await client.post(
        f"{P}/{c.reference}/extension",
        json={"working_days": 2, "reason": "需要现场核查"},
        headers=key,
    )
    assert asked.status_code == 200, asked.text
    waiting = await merge(c, b)
    assert waiting.status_code == 409
    assert "awaits the office" in waiting.json()["detail"]
    assert (await merge(a, b)).status_code == 200
    chained = await merge(b, c)  # b has a repeat merged into it
    assert chained.status_code == 409
    assert f"merged into {b.reference}" in chained.json()["detail"]
