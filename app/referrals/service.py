"""Out of scope: tell the citizen who handles the matter and how to reach them (the Anhui
notice's 说明情况、指明途径), and end the inquiry `referred`."""

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery import service as outbox
from app.inquiries.models import Channel, Inquiry, InquiryStatus
from app.inquiries.service import transition
from app.problems import Conflict, NotFound, Problem
from app.referrals.models import Referral, ReferralEntry
from app.referrals.schemas import ReferralEntryCreate, ReferralEntryUpdate
from app.replies.models import Reply, ReplyPurpose
from app.routing.models import RoutingRule
from app.rule_changes import record_change, snapshot


class ReferralEntryNotFound(NotFound):
    title = "Referral directory entry not found"
    slug = "referral-entry-not-found"
    example_detail = "No referral directory entry 'hefei-court'."


class ReferralEntryExists(Conflict):
    title = "Referral directory entry exists"
    slug = "referral-entry-exists"
    example_detail = "An entry with code 'hefei-court' exists."


class UnverifiedEntry(Problem):
    status = 422
    title = "Referral entry not verified"
    slug = "unverified-referral-entry"
    example_detail = "hefei-court is not verified: it cannot appear in a citizen-facing text."


# Referral replies go out before ordinary answers, after urgent safety advice (priority 0).
REFERRAL_PRIORITY = 1


async def get_entry(session: AsyncSession, *, code: str) -> ReferralEntry:
    """One directory entry by code."""
    entry = await session.scalar(select(ReferralEntry).where(ReferralEntry.code == code))
    if entry is None:
        raise ReferralEntryNotFound(f"No referral directory entry {code!r}.")
    return entry


def usable(entry: ReferralEntry) -> ReferralEntry:
    """The entry, if it may appear in a citizen-facing text; UnverifiedEntry otherwise."""
    if not entry.verified or not entry.active:
        state = "not verified" if not entry.verified else "inactive"
        raise UnverifiedEntry(
            f"{entry.code} is {state}: it cannot appear in a citizen-facing text."
        )
    return entry


def listing(*, verified: bool | None) -> Select[ReferralEntry]:
    """Directory entries by code."""
    statement = select(ReferralEntry).order_by(ReferralEntry.code)
    if verified is not None:
        statement = statement.where(ReferralEntry.verified == verified)
    return statement


async def create_entry(session: AsyncSession, *, data: ReferralEntryCreate) -> ReferralEntry:
    """Add an entry; it starts unverified."""
    if await session.scalar(select(ReferralEntry.id).where(ReferralEntry.code == data.code)):
        raise ReferralEntryExists(f"An entry with code {data.code!r} exists.")
    entry = ReferralEntry(**data.model_dump(), verified=False, verification_note="", active=True)
    session.add(entry)
    await record_change(session, entry, before=None)
    return entry


# What a citizen reads: a new value here must be checked again before it reaches anyone.
SUBSTANCE = ("name", "contact", "basis", "handles", "template")


async def update_entry(
    session: AsyncSession, entry: ReferralEntry, *, data: ReferralEntryUpdate
) -> int:
    """Correct or verify an entry; changing what a citizen reads makes it unverified again.
    Returns how many active routing rules routing now skips because the entry cannot be used."""
    before = snapshot(entry)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    # Only a new value counts: re-sending the same contact must not undo someone's check.
    changed = any(
        changes.get(field, getattr(entry, field)) != getattr(entry, field) for field in SUBSTANCE
    )
    if changed and "verified" not in changes:
        changes["verified"] = False
    for field, value in changes.items():
        setattr(entry, field, value)
    await record_change(session, entry, before=before)
    if entry.verified and entry.active:
        return 0
    skipped = await session.scalar(
        select(func.count(RoutingRule.id)).where(
            RoutingRule.referral_entry_id == entry.id, RoutingRule.active
        )
    )
    return skipped or 0


def citizen_text(entry: ReferralEntry, *, reference: str, note: str = "") -> str:
    """The referral as the citizen reads it, built from the entry's template."""
    text = entry.template.format(
        name=entry.name,
        contact=entry.contact,
        handles=entry.handles,
        basis=entry.basis,
        reference=reference,
    )
    return f"{text}{note}" if note else text


class PublicNote(Conflict):
    title = "No note on a public comment's referral"
    slug = "public-referral-note"
    example_detail = (
        "WX20261124-000123 is a public comment: its referral is posted under the article with "
        "the directory's verified text only; a note would go public unreviewed."
    )


async def refer(
    session: AsyncSession,
    inquiry: Inquiry,
    entry: ReferralEntry,
    *,
    actor: str,
    person_id: int | None = None,
    note: str = "",
    details: dict[str, Any] | None = None,
) -> Referral:
    """End an inquiry out of scope: the referral record, its reply queued, status `referred`.
    On a public comment it is the comment's one reply, posted at once: the entry's verified
    text only (a public reply of a person's words passes a reviewer)."""
    usable(entry)
    if note and inquiry.channel is Channel.comment:
        raise PublicNote(
            f"{inquiry.reference} is a public comment: its referral is posted under the article "
            "with the directory's verified text only; a note would go public unreviewed."
        )
    text = citizen_text(entry, reference=inquiry.reference, note=note)
    referral = Referral(
        inquiry_id=inquiry.id, entry_id=entry.id, basis=entry.basis, explanation=text, actor=actor
    )
    session.add(referral)
    reply = Reply(
        inquiry_id=inquiry.id,
        text=text,
        purpose=ReplyPurpose.referral,
        priority=REFERRAL_PRIORITY,
        author=actor,
        person_id=person_id,
    )
    session.add(reply)
    await session.flush()
    await outbox.enqueue(session, reply)
    transition(
        session,
        inquiry,
        InquiryStatus.referred,
        actor=actor,
        reason=text,
        person_id=person_id,
        details=(details or {}) | {"referral_entry": entry.code},
    )
    await session.flush()
    return referral
