"""Where an inquiry goes: kind classification, then the first matching routing rule, else the
account's owning department. Every decision is stored on the inquiry and audited."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app import rule_changes as changes
from app.accounts import service as accounts
from app.accounts.models import Account
from app.deadlines import pauses
from app.deadlines import service as deadlines
from app.deadlines.models import PauseReason
from app.deadlines.rules import NoDeadlineRule
from app.delivery import service as outbox
from app.departments import service as departments
from app.departments.models import Department
from app.inquiries import assignments
from app.inquiries.models import (
    AssignmentDecision,
    Channel,
    EventAction,
    Inquiry,
    InquiryKind,
    InquiryMessage,
    InquiryStatus,
)
from app.inquiries.service import acted_on_by_a_key, record, transition
from app.problems import NotFound, Problem
from app.referrals import service as referrals
from app.referrals.models import ReferralEntry
from app.replies.models import Reply, ReplyPurpose
from app.routing import rules
from app.routing.models import KindRule, RoutingRule
from app.routing.schemas import KindRuleCreate, KindRuleUpdate, RoutingRuleCreate, RoutingRuleUpdate

ROUTER = "system:router"
logger = logging.getLogger("govinbox.routing")


class RoutingRuleNotFound(NotFound):
    title = "Routing rule not found"
    slug = "routing-rule-not-found"
    example_detail = "No routing rule 42."


class InactiveTarget(Problem):
    status = 422
    title = "Target department is not active"
    slug = "inactive-target"
    example_detail = "hefei-hrss is deactivated; a rule cannot send inquiries there."


@dataclass(frozen=True)
class Decision:
    kind: InquiryKind
    kind_rule: KindRule | None
    department: Department  # who handles it; for a referral, the owner that refers it
    referral_entry: ReferralEntry | None  # set: out of scope, referred to this entry
    rule: RoutingRule | None  # None: the fallback to the account's owning department
    explanation: str
    matched: list[RoutingRule]


def _usable(rule: RoutingRule) -> bool:
    """A rule whose target can take inquiries now (an active department, or a verified entry)."""
    if rule.department is not None:
        return rule.department.active
    entry = rule.referral_entry
    return entry is not None and entry.verified and entry.active


def fallback_explanation(owner: Department) -> str:
    return (
        f"未匹配到路由规则，由账号主办单位{owner.name}分办。(no rule matched: the owner triages it)"
    )


def _rules() -> Select[RoutingRule]:
    return select(RoutingRule).options(
        joinedload(RoutingRule.department),
        joinedload(RoutingRule.account),
        joinedload(RoutingRule.referral_entry),
    )


async def decide(
    session: AsyncSession, *, account: Account, channel: Channel, text: str
) -> Decision:
    """What routing decides for this text on this account, now; stores nothing."""
    kind_rules = list(await session.scalars(select(KindRule).where(KindRule.active)))
    kind, kind_rule = rules.classify(text, kind_rules)
    active = list(await session.scalars(_rules().where(RoutingRule.active)))
    sample = rules.Sample(text, account.id, channel, account.department.region_code)
    matched = [r for r in rules.matching(active, sample, kind) if _usable(r)]
    # A deactivated owner triages nothing: the nearest active office does.
    owner = await departments.standing_in_for(session, account.department)
    if matched:
        first = matched[0]
        department = first.department or owner
        return Decision(
            kind, kind_rule, department, first.referral_entry, first, first.explanation, matched
        )
    return Decision(kind, kind_rule, owner, None, None, fallback_explanation(owner), matched)


def urgent_words(content: str, keywords: Sequence[str]) -> list[str]:
    """The life-and-safety keywords found in a message."""
    return [word for word in keywords if word and word in content]


# Life-and-safety content: tell the citizen at once where help comes fastest (国办发〔2022〕12号:
# 110 handles emergencies; 119, 120 and 122 stay separate lines).
URGENT_ADVICE = (
    "如遇紧急情况，请立即拨打电话求助：火警119，医疗急救120，报警110，交通事故122。"
    "本平台留言不能代替紧急报警。您的留言我们已收到并会尽快处理。"
)
URGENT_PRIORITY = 0  # before every other reply


async def _flag_if_urgent(
    session: AsyncSession,
    inquiry: Inquiry,
    message: InquiryMessage,
    keywords: Sequence[str],
    now: datetime,
) -> bool:
    """Flag the inquiry urgent if the message carries life-and-safety words; True if it did."""
    found = urgent_words(message.content, keywords)
    if found and not inquiry.urgent:
        inquiry.urgent = True
        # When the words arrived: the platform's send time, kept between receipt and now.
        inquiry.urgent_at = max(inquiry.received_at, min(message.sent_at, now))
        reason = f"life-and-safety words in message {message.seq}: {'、'.join(found)}"
        if inquiry.channel is Channel.comment:
            # A comment takes one public reply: it is kept for the department's answer, due
            # within the urgent hours, which gives the advice itself.
            reason += "; a public comment: no automatic advice, the answer is its one reply"
        else:
            advice = Reply(
                inquiry_id=inquiry.id,
                text=URGENT_ADVICE,
                purpose=ReplyPurpose.urgent_advice,
                priority=URGENT_PRIORITY,
                author=ROUTER,
            )
            session.add(advice)
            await session.flush()
            await outbox.enqueue(session, advice)
        record(
            session,
            inquiry,
            actor=ROUTER,
            action=EventAction.flagged_urgent,
            reason=reason,
            details={"seq": message.seq, "keywords": found},
        )
        return True
    return False


async def _locked_unrouted(session: AsyncSession, inquiry_id: int) -> Inquiry | None:
    # Wait for the lock (an intake appending a message holds it for milliseconds); skipping it
    # would let the job succeed without deciding anything.
    return await session.scalar(
        select(Inquiry)
        .where(Inquiry.id == inquiry_id, Inquiry.routed_at.is_(None))
        .with_for_update(key_share=True)
    )


async def _checked_messages(
    session: AsyncSession, inquiry: Inquiry, keywords: Sequence[str], now: datetime
) -> list[InquiryMessage]:
    """The inquiry's messages, each read for life-and-safety words (and marked as read)."""
    messages = list(
        await session.scalars(
            select(InquiryMessage)
            .where(InquiryMessage.inquiry_id == inquiry.id)
            .order_by(InquiryMessage.seq)
        )
    )
    for message in messages:
        await _flag_if_urgent(session, inquiry, message, keywords, now)
        message.urgent_checked_at = message.urgent_checked_at or now
    return messages


async def _account(session: AsyncSession, inquiry: Inquiry) -> Account:
    account = await session.scalar(
        select(Account)
        .where(Account.id == inquiry.account_id)
        .options(joinedload(Account.department))
    )
    assert account is not None  # a foreign key
    return account


async def route(
    session: AsyncSession, *, inquiry_id: int, now: datetime, keywords: Sequence[str]
) -> bool:
    """Decide an unrouted inquiry once; False if it was routed already."""
    inquiry = await _locked_unrouted(session, inquiry_id)
    if inquiry is None:
        return False
    messages = await _checked_messages(session, inquiry, keywords, now)
    account = await _account(session, inquiry)
    decision = await decide(
        session, account=account, channel=inquiry.channel, text=routing_text(messages)
    )
    await _apply(session, inquiry, account, decision, now=now)
    return True


def routing_text(messages: Sequence[InquiryMessage]) -> str:
    """What routing reads: every fragment, in order, one per line (the preview takes the same)."""
    return "\n".join(message.content for message in messages)


async def reroute(
    session: AsyncSession, *, inquiry_id: int, now: datetime, keywords: Sequence[str]
) -> bool:
    """A fragment came after routing decided: decide again on the whole message while no key has
    acted on the inquiry; True if the decision changed (audited, deadline counted again from
    receipt)."""
    inquiry = await session.scalar(
        select(Inquiry)
        .where(
            Inquiry.id == inquiry_id,
            Inquiry.routed_at.is_not(None),
            Inquiry.status.in_([InquiryStatus.new, InquiryStatus.assigned]),
            Inquiry.arbitration_office_id.is_(None),
        )
        .with_for_update(key_share=True)
    )
    if inquiry is None or await acted_on_by_a_key(session, inquiry):
        return False
    was_urgent = inquiry.urgent
    messages = await _checked_messages(session, inquiry, keywords, now)
    account = await _account(session, inquiry)
    decision = await decide(
        session, account=account, channel=inquiry.channel, text=routing_text(messages)
    )
    rule_id = decision.rule.id if decision.rule else None
    if (
        decision.referral_entry is None
        and decision.department.id == inquiry.department_id
        and decision.kind is inquiry.kind
        and rule_id == inquiry.routing_rule_id
    ):
        if inquiry.urgent and not was_urgent:  # read here first: check_urgent will not see it
            assert inquiry.urgent_at is not None
            await deadlines.became_urgent(session, inquiry, at=inquiry.urgent_at, actor=ROUTER)
        return False
    await _apply(
        session,
        inquiry,
        account,
        decision,
        now=now,
        details={"rerouted": True, "messages": len(messages)},
        reroute=True,
    )
    return True


async def fall_back(
    session: AsyncSession,
    *,
    inquiry_id: int,
    now: datetime,
    keywords: Sequence[str],
    error: str,
    attempts: int,
) -> bool:
    """Routing failed `attempts` times: the account's owning department triages the inquiry, as
    when no rule matches, and the decision records the error. False if it was routed already."""
    inquiry = await _locked_unrouted(session, inquiry_id)
    if inquiry is None:
        return False
    await _checked_messages(session, inquiry, keywords, now)
    account = await _account(session, inquiry)
    owner = await departments.standing_in_for(session, account.department)
    explanation = (
        f"自动分办失败，由账号主办单位{owner.name}分办。"
        f"(routing failed after {attempts} attempts: {error})"
    )
    decision = Decision(inquiry.kind, None, owner, None, None, explanation, [])
    logger.error("routing failed; owner triages", extra={"inquiry_id": inquiry.id, "error": error})
    await _apply(
        session,
        inquiry,
        account,
        decision,
        now=now,
        details={"routing_failed": error, "attempts": attempts},
    )
    return True


async def _apply(
    session: AsyncSession,
    inquiry: Inquiry,
    account: Account,
    decision: Decision,
    *,
    now: datetime,
    details: dict[str, Any] | None = None,
    reroute: bool = False,
) -> None:
    """Store a routing decision on the inquiry, audit it, count its deadline, assign or refer."""
    inquiry.kind = decision.kind
    # A referral stays readable by the account's owning department, which referred it.
    if reroute or inquiry.department_id != decision.department.id:
        await assignments.assign(
            session,
            inquiry,
            decision.department,
            at=now,
            decision=AssignmentDecision.rerouted if reroute else AssignmentDecision.routed,
            reason=decision.explanation,
            actor=ROUTER,
        )
    inquiry.routing_rule_id = decision.rule.id if decision.rule else None
    inquiry.routing_explanation = decision.explanation
    inquiry.routed_at = inquiry.routed_at or now
    record(
        session,
        inquiry,
        actor=ROUTER,
        action=EventAction.routed,
        reason=decision.explanation,
        details={
            "kind": decision.kind.value,
            "kind_rule_id": decision.kind_rule.id if decision.kind_rule else None,
            "rule_id": decision.rule.id if decision.rule else None,
            "department": decision.department.code,
            "referral_entry": decision.referral_entry.code if decision.referral_entry else None,
            "matched_rule_ids": [rule.id for rule in decision.matched],
        }
        | (details or {}),
    )
    # The reply deadline: by kind, or the referral rule; counted from receipt, in the region of
    # the account's owning department.
    try:
        await deadlines.set_due(
            session,
            inquiry,
            purpose="referral" if decision.referral_entry is not None else decision.kind.value,
            region_code=account.department.region_code,
            actor=ROUTER,
        )
    except NoDeadlineRule as exc:
        # Routing goes on; the missing rule is visible in the trail and the log, not a retry loop.
        logger.error("no deadline rule", extra={"inquiry_id": inquiry.id, "detail": exc.detail})
        record(session, inquiry, actor=ROUTER, action=EventAction.deadline_set, reason=exc.detail)
    if decision.referral_entry is not None:
        await referrals.refer(session, inquiry, decision.referral_entry, actor=ROUTER)
    elif inquiry.status is InquiryStatus.new:
        transition(
            session,
            inquiry,
            InquiryStatus.assigned,
            actor=ROUTER,
            reason=f"assigned to {decision.department.code}",
        )


async def check_urgent(
    session: AsyncSession, *, inquiry_id: int, seq: int, keywords: Sequence[str], now: datetime
) -> bool:
    """Flag an inquiry urgent if a later message carries life-and-safety words."""
    inquiry = await session.scalar(
        select(Inquiry).where(Inquiry.id == inquiry_id).with_for_update(key_share=True)
    )
    message = await session.scalar(
        select(InquiryMessage).where(
            InquiryMessage.inquiry_id == inquiry_id, InquiryMessage.seq == seq
        )
    )
    if inquiry is None or message is None:
        return False
    message.urgent_checked_at = message.urgent_checked_at or now
    if inquiry.urgent or not await _flag_if_urgent(session, inquiry, message, keywords, now):
        return False
    assert inquiry.urgent_at is not None
    await deadlines.became_urgent(session, inquiry, at=inquiry.urgent_at, actor=ROUTER)
    return True


async def window_renewed(session: AsyncSession, *, inquiry_id: int) -> int:
    """The citizen wrote: replies that waited for the window to the citizen on this account go
    out (deferred delivery), whichever inquiry the message joined or opened."""
    inquiry = await session.get(Inquiry, inquiry_id)
    if inquiry is None:
        return 0
    return await outbox.wake(session, account_id=inquiry.account_id, citizen_id=inquiry.citizen_id)


async def citizen_answered(
    session: AsyncSession, *, inquiry_id: int, seq: int, now: datetime
) -> bool:
    """The citizen's next message ends an "awaiting citizen" pause by itself, as of its time
    (never later than now: the platform's send time is the sender's word, and a future one
    would credit the pause with days that have not passed)."""
    inquiry = await session.scalar(
        select(Inquiry).where(Inquiry.id == inquiry_id).with_for_update(key_share=True)
    )
    message = await session.scalar(
        select(InquiryMessage).where(
            InquiryMessage.inquiry_id == inquiry_id, InquiryMessage.seq == seq
        )
    )
    if inquiry is None or message is None:
        return False
    added = await pauses.end_pause(
        session,
        inquiry,
        now=min(message.sent_at, now),
        actor="system:intake",
        note=f"the citizen answered (message {seq})",
        only_reason=PauseReason.awaiting_citizen,
    )
    return added is not None


_REQUEUE = text(
    """
    SELECT coalesce(cardinality(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW('routing', 'route_inquiry', 0, NULL, NULL,
                   jsonb_build_object('inquiry_id', i.id), NULL)::procrastinate_job_to_defer_v1
          FROM inquiry i
         WHERE i.routed_at IS NULL AND i.created_at < :cutoff
           AND NOT EXISTS (
               SELECT 1 FROM procrastinate_jobs j
                WHERE j.task_name = 'route_inquiry' AND j.status IN ('todo', 'doing')
                  AND j.args ->> 'inquiry_id' = i.id::text)
         ORDER BY i.id
         LIMIT :batch
    ))), 0)
    """
)


async def requeue_unrouted(
    session: AsyncSession, *, now: datetime, grace: timedelta, batch: int = 500
) -> int:
    """Queue routing again for inquiries left without a decision (a lost or failed job)."""
    count = await session.scalar(_REQUEUE, {"cutoff": now - grace, "batch": batch})
    return int(count or 0)


_REQUEUE_URGENT = text(
    """
    SELECT coalesce(cardinality(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW('routing', 'check_urgent', 0, NULL, NULL,
                   jsonb_build_object('inquiry_id', m.inquiry_id, 'seq', m.seq),
                   NULL)::procrastinate_job_to_defer_v1
          FROM inquiry_message m JOIN inbox_event e ON e.id = m.inbox_event_id
          JOIN inquiry i ON i.id = m.inquiry_id
         -- Routing reads every message of an inquiry it decides: only routed ones are left.
         WHERE m.urgent_checked_at IS NULL AND i.routed_at IS NOT NULL
           AND e.received_at < :cutoff
           AND NOT EXISTS (
               SELECT 1 FROM procrastinate_jobs j
                WHERE j.task_name = 'check_urgent' AND j.status IN ('todo', 'doing')
                  AND j.args ->> 'inquiry_id' = m.inquiry_id::text
                  AND j.args ->> 'seq' = m.seq::text)
           -- A message whose check failed three times over is left to the failed-jobs metric.
           AND (SELECT count(*) FROM procrastinate_jobs j
                 WHERE j.task_name = 'check_urgent' AND j.status = 'failed'
                   AND j.args ->> 'inquiry_id' = m.inquiry_id::text
                   AND j.args ->> 'seq' = m.seq::text) < 3
         ORDER BY m.id
         LIMIT :batch
    ))), 0)
    """
)


async def requeue_urgent_checks(
    session: AsyncSession, *, now: datetime, grace: timedelta, batch: int = 500
) -> int:
    """Queue the life-and-safety check again for messages no check has read (a lost or failed
    job must not let an urgent follow-up go unseen)."""
    count = await session.scalar(_REQUEUE_URGENT, {"cutoff": now - grace, "batch": batch})
    return int(count or 0)


# Rules, managed through the admin API.


async def _target(session: AsyncSession, code: str) -> Department:
    department = await departments.get(session, code=code)
    if not department.active:
        raise InactiveTarget(f"{code} is deactivated; a rule cannot send inquiries there.")
    return department


async def get_rule(session: AsyncSession, *, rule_id: int) -> RoutingRule:
    """One routing rule."""
    rule = await session.scalar(_rules().where(RoutingRule.id == rule_id))
    if rule is None:
        raise RoutingRuleNotFound(f"No routing rule {rule_id}.")
    return rule


def rule_listing() -> Select[RoutingRule]:
    """Routing rules in the order they are tried."""
    return _rules().order_by(RoutingRule.priority, RoutingRule.id)


async def create_rule(session: AsyncSession, *, data: RoutingRuleCreate) -> RoutingRule:
    """Add a routing rule; its pattern was checked with RE2 by the schema."""
    account = await accounts.get(session, code=data.account_code) if data.account_code else None
    entry = (
        referrals.usable(await referrals.get_entry(session, code=data.referral_entry_code))
        if data.referral_entry_code
        else None
    )
    rule = RoutingRule(
        name=data.name,
        priority=data.priority,
        account=account,
        channel=data.channel,
        kind=data.kind,
        region_prefix=data.region_prefix,
        keywords=data.keywords,
        pattern=data.pattern,
        department=await _target(session, data.department_code) if data.department_code else None,
        referral_entry=entry,
        explanation=data.explanation,
        active=True,
    )
    session.add(rule)
    await changes.record_change(session, rule, before=None)
    return rule


async def update_rule(session: AsyncSession, rule: RoutingRule, *, data: RoutingRuleUpdate) -> None:
    """Change a rule; omitted fields stay."""
    before = changes.snapshot(rule)
    given = data.model_dump(exclude_unset=True)
    for required in ("priority", "keywords", "explanation", "active"):
        if required in given and given[required] is None:
            del given[required]  # these cannot be cleared; null leaves them as they are
    if given.get("department_code") is not None:
        rule.department = await _target(session, given["department_code"])
        rule.referral_entry = None
    if given.get("referral_entry_code") is not None:
        code = given["referral_entry_code"]
        rule.referral_entry = referrals.usable(await referrals.get_entry(session, code=code))
        rule.department = None
    if "account_code" in given:
        code = given["account_code"]
        rule.account = await accounts.get(session, code=code) if code else None
    for field, value in given.items():
        if field not in ("department_code", "referral_entry_code", "account_code"):
            setattr(rule, field, value)
    if rule.active:
        # A rule that will take inquiries needs a target that can take them.
        if rule.department is not None and not rule.department.active:
            raise InactiveTarget(f"{rule.department.code} is deactivated.")
        if rule.referral_entry is not None:
            referrals.usable(rule.referral_entry)
    await changes.record_change(session, rule, before=before)


async def create_kind_rule(session: AsyncSession, *, data: KindRuleCreate) -> KindRule:
    """Add a kind classification rule."""
    rule = KindRule(
        kind=data.kind,
        priority=data.priority,
        keywords=data.keywords,
        pattern=data.pattern,
        active=True,
    )
    session.add(rule)
    await changes.record_change(session, rule, before=None)
    return rule


class KindRuleMatchesNothing(Problem):
    status = 422
    title = "Kind rule matches nothing"
    slug = "kind-rule-matches-nothing"
    example_detail = "A kind rule needs keywords or a pattern; this change leaves neither."


class KindRuleNotFound(NotFound):
    title = "Kind rule not found"
    slug = "kind-rule-not-found"
    example_detail = "No kind rule 42."


async def update_kind_rule(
    session: AsyncSession, *, rule_id: int, data: KindRuleUpdate
) -> KindRule:
    """Change or switch off a kind rule; omitted fields stay, `pattern` clears with null."""
    rule = await session.get(KindRule, rule_id)
    if rule is None:
        raise KindRuleNotFound(f"No kind rule {rule_id}.")
    before = changes.snapshot(rule)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is not None or field == "pattern":
            setattr(rule, field, value)
    if not rule.keywords and not rule.pattern:
        raise KindRuleMatchesNothing(
            "A kind rule needs keywords or a pattern; this change leaves neither."
        )
    await changes.record_change(session, rule, before=before)
    return rule


def kind_rule_listing() -> Select[KindRule]:
    """Kind rules in the order they are tried."""
    return select(KindRule).order_by(KindRule.priority, KindRule.id)


async def accuracy(session: AsyncSession) -> list[tuple[str | None, int, int]]:
    """Per rule (None: the fallback): inquiries routed, and how many were marked wrong."""
    rows = await session.execute(
        select(
            RoutingRule.name,
            func.count(Inquiry.id),
            func.count(Inquiry.routing_marked_wrong_at),
        )
        .select_from(Inquiry)
        .outerjoin(RoutingRule, RoutingRule.id == Inquiry.routing_rule_id)
        .where(Inquiry.routed_at.is_not(None))
        .group_by(RoutingRule.name)
        .order_by(RoutingRule.name.nulls_last())
    )
    return [(name, routed, wrong) for name, routed, wrong in rows]


def unusable_reason(rule: RoutingRule) -> str | None:
    """Why routing skips this rule (`_usable` is false): its target cannot take inquiries now."""
    if _usable(rule):
        return None
    if rule.department is not None:
        return f"department {rule.department.code} is deactivated"
    entry = rule.referral_entry
    if entry is None:
        return "the rule has no target"
    return f"referral entry {entry.code} is {'inactive' if entry.verified else 'not verified'}"
