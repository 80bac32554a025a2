from fastapi import APIRouter, status

from app import problems
from app import rule_changes as changes
from app.accounts import service as accounts
from app.auth import AdminDep
from app.db import SessionDep
from app.departments.service import DepartmentNotFound
from app.routing import rules, service
from app.routing.models import RoutingRule
from app.routing.schemas import (
    KindRuleCreate,
    KindRuleRead,
    KindRuleUpdate,
    PreviewDecision,
    PreviewRead,
    PreviewRequest,
    RoutingRuleCreate,
    RoutingRuleRead,
    RoutingRuleUpdate,
    RuleAccuracy,
    RuleChangeRead,
)
from app.schemas import Page, PageDep, RowId, paginate

router = APIRouter(
    prefix="/api/v1/admin/routing",
    tags=["admin: routing"],
    responses=problems.doc(problems.Unauthorized),
)


@router.post(
    "/rules",
    status_code=status.HTTP_201_CREATED,
    summary="Add a routing rule",
    responses=problems.doc(
        DepartmentNotFound, accounts.AccountNotFound, service.InactiveTarget, problems.Conflict
    ),
)
async def create_rule(data: RoutingRuleCreate, _: AdminDep, session: SessionDep) -> RoutingRuleRead:
    """Send matching inquiries to a department, with the explanation stored on each decision.

    Patterns are RE2 (linear time): an invalid one, or one using backreferences or lookaround,
    is refused with 422."""
    return RoutingRuleRead.model_validate(await service.create_rule(session, data=data))


@router.get("/rules", summary="List routing rules")
async def list_rules(_: AdminDep, session: SessionDep, page: PageDep) -> Page[RoutingRuleRead]:
    """Rules in the order they are tried (priority, then id), active and inactive. `usable` is
    false, with `unusable_reason`, for a rule routing skips because its target cannot take
    inquiries now (a deactivated department, an unverified or inactive referral entry)."""
    return await paginate(session, service.rule_listing(), page, RoutingRuleRead)


@router.get(
    "/rules/{rule_id}",
    summary="Read a routing rule",
    responses=problems.doc(service.RoutingRuleNotFound),
)
async def read_rule(rule_id: RowId, _: AdminDep, session: SessionDep) -> RoutingRuleRead:
    """One rule by id."""
    return RoutingRuleRead.model_validate(await service.get_rule(session, rule_id=rule_id))


@router.patch(
    "/rules/{rule_id}",
    summary="Change a routing rule",
    responses=problems.doc(service.RoutingRuleNotFound, DepartmentNotFound, service.InactiveTarget),
)
async def update_rule(
    rule_id: RowId, data: RoutingRuleUpdate, _: AdminDep, session: SessionDep
) -> RoutingRuleRead:
    """Change priority, words, pattern, target, explanation or active flag; decisions already
    made keep the rule and explanation they were made with."""
    rule = await service.get_rule(session, rule_id=rule_id)
    await service.update_rule(session, rule, data=data)
    return RoutingRuleRead.model_validate(rule)


@router.post("/kind-rules", status_code=status.HTTP_201_CREATED, summary="Add a kind rule")
async def create_kind_rule(data: KindRuleCreate, _: AdminDep, session: SessionDep) -> KindRuleRead:
    """Classify inquiries (consultation, help, complaint, report, suggestion) by their words."""
    return KindRuleRead.model_validate(await service.create_kind_rule(session, data=data))


@router.patch(
    "/kind-rules/{rule_id}",
    summary="Change a kind rule",
    responses=problems.doc(service.KindRuleNotFound, service.KindRuleMatchesNothing),
)
async def update_kind_rule(
    rule_id: RowId, data: KindRuleUpdate, _: AdminDep, session: SessionDep
) -> KindRuleRead:
    """Change priority, words or pattern, or switch it off with `active: false`."""
    rule = await service.update_kind_rule(session, rule_id=rule_id, data=data)
    return KindRuleRead.model_validate(rule)


@router.get("/kind-rules", summary="List kind rules")
async def list_kind_rules(_: AdminDep, session: SessionDep, page: PageDep) -> Page[KindRuleRead]:
    """Kind rules in the order they are tried."""
    return await paginate(session, service.kind_rule_listing(), page, KindRuleRead)


@router.post(
    "/preview",
    summary="Try the rules on a sample message",
    responses=problems.doc(accounts.AccountNotFound),
)
async def preview(data: PreviewRequest, _: AdminDep, session: SessionDep) -> PreviewRead:
    """The decision routing would make now, every rule that matched, in priority order, and the
    matching rules it skipped because their target cannot take inquiries (`unusable_reason`).
    Nothing is stored."""
    account = await accounts.get(session, code=data.account_code)
    decision = await service.decide(session, account=account, channel=data.channel, text=data.text)
    sample = rules.Sample(data.text, account.id, data.channel, account.department.region_code)
    active = await session.scalars(service.rule_listing().where(RoutingRule.active))
    skipped = [
        r for r in rules.matching(list(active), sample, decision.kind) if service.unusable_reason(r)
    ]
    return PreviewRead(
        kind=decision.kind,
        decision=PreviewDecision(
            department_code=decision.department.code,
            referral_entry_code=decision.referral_entry.code if decision.referral_entry else None,
            rule_name=decision.rule.name if decision.rule else None,
            explanation=decision.explanation,
        ),
        matched=[RoutingRuleRead.model_validate(rule) for rule in decision.matched],
        skipped=[RoutingRuleRead.model_validate(rule) for rule in skipped],
    )


@router.get("/accuracy", summary="Routing accuracy per rule")
async def accuracy(_: AdminDep, session: SessionDep) -> list[RuleAccuracy]:
    """Per rule: inquiries it routed and how many the receiving department marked wrong."""
    return [
        RuleAccuracy(
            rule_name=name,
            routed=routed,
            marked_wrong=wrong,
            accuracy=1 - wrong / routed if routed else None,
        )
        for name, routed, wrong in await service.accuracy(session)
    ]


@router.get("/changes", summary="Audit trail of the rules")
async def list_changes(_: AdminDep, session: SessionDep, page: PageDep) -> Page[RuleChangeRead]:
    """Every change to routing rules, kind rules and the referral directory, newest first:
    who, when, and each field's value before and after."""
    return await paginate(session, changes.listing(), page, RuleChangeRead)
