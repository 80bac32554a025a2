"""Which deadline rule governs an inquiry, and in which region it is counted."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.deadlines.models import DeadlineRule
from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.problems import Conflict


class NoDeadlineRule(Conflict):
    title = "No deadline rule applies"
    slug = "no-deadline-rule"
    example_detail = "No active deadline rule for consultation in 340100."


async def rule_for(
    session: AsyncSession, *, purpose: str, region_code: str, channel: str | None
) -> DeadlineRule:
    """The active rule for a purpose: the most specific region prefix wins, then one for the
    channel over one for every channel."""
    candidates = await session.scalars(
        select(DeadlineRule).where(DeadlineRule.purpose == purpose, DeadlineRule.active)
    )
    fitting = [
        rule
        for rule in candidates
        if (rule.region_prefix is None or region_code.startswith(rule.region_prefix))
        and (rule.channel is None or rule.channel == channel)
    ]
    if not fitting:
        raise NoDeadlineRule(f"No active deadline rule for {purpose} in {region_code}.")
    return max(
        fitting,
        key=lambda r: (len(r.region_prefix or ""), r.channel is not None, not r.is_default, r.id),
    )


async def region_of(session: AsyncSession, inquiry: Inquiry) -> str:
    """The division code deadlines are counted in: the account's owning department's."""
    region = await session.scalar(
        select(Department.region_code)
        .join(Account, Account.department_id == Department.id)
        .where(Account.id == inquiry.account_id)
    )
    assert region is not None  # foreign keys
    return region
