"""How a department handles an inquiry before and around its answer: signing for it (签收), handing
it to a colleague, internal notes, merging a repeat appeal (并单) and finding candidates for it.
Each action is one transaction with its audit event naming the person behind the key."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.calendar import CHINA
from app.deadlines.models import (
    DeadlineExtension,
    DeadlinePause,
    ExtensionStatus,
    PauseStatus,
)
from app.departments.models import Department
from app.inquiries import assignments
from app.inquiries.models import (
    EventAction,
    Inquiry,
    InquiryAssignment,
    InquiryMessage,
    InquiryNote,
    InquiryStatus,
)
from app.inquiries.service import (
    NotChangeable,
    check_action,
    check_not_awaiting_arbitration,
    lock,
    record,
    transition,
)
from app.people.models import Person, Role
from app.problems import Conflict, Problem
from app.replies.service import withdraw_pending
from app.roles import Action
from app.settings import settings


class PersonRequired(Problem):
    status = 422
    title = "A person must sign for it"
    slug = "person-required"
    example_detail = (
        "A client system's key names the person who takes the inquiry on (`person_id`)."
    )


class NotAColleague(Problem):
    status = 422
    title = "Not an active person of this department"
    slug = "not-a-colleague"
    example_detail = "Person 17 is not an active responder of hefei-hrss."


class AlreadySigned(Conflict):
    title = "Already signed for"
    slug = "already-signed"
    example_detail = "WX20261124-000123 was signed for by 张三 at 2026-11-24T03:00:00Z."


class NotSigned(Conflict):
    title = "Not signed for yet"
    slug = "not-signed"
    example_detail = "WX20261124-000123 is not signed for: sign for it first, then hand it over."


class MergeRefused(Conflict):
    title = "Merge not possible"
    slug = "merge-refused"
    example_detail = "WX20261124-000123 cannot be merged into itself."


async def _colleague(session: AsyncSession, department: Department, person_id: int) -> Person:
    person = await session.get(Person, person_id)
    if (
        person is None
        or person.department_id != department.id
        or not person.active
        or Role.responder not in person.roles
    ):
        raise NotAColleague(f"Person {person_id} is not an active responder of {department.code}.")
    return person


async def _held(session: AsyncSession, inquiry: Inquiry) -> InquiryAssignment:
    held = await assignments.current(session, inquiry)
    if held is None:  # an unrouted inquiry has no holder to sign for it
        raise NotChangeable(f"{inquiry.reference} has not reached a department yet.")
    return held


async def sign_for(
    session: AsyncSession,
    inquiry: Inquiry,
    department: Department,
    *,
    signer: Person | None,
    person_id: int | None,
    now: datetime,
    actor: str,
    details: dict[str, Any],
) -> InquiryAssignment:
    """A person of the holding department takes the inquiry on. Never moves a deadline: the
    clock started at receipt. A person's key signs for its person; a client's names one."""
    check_action(inquiry, Action.sign_for)
    check_not_awaiting_arbitration(inquiry)
    if signer is None:
        if person_id is None:
            raise PersonRequired(
                "A client system's key names the person who takes the inquiry on (`person_id`)."
            )
        signer = await _colleague(session, department, person_id)
    elif person_id is not None and person_id != signer.id:
        raise PersonRequired(
            "A person's key signs for its own person; hand the inquiry over to a colleague with "
            "/hand-over."
        )
    held = await _held(session, inquiry)
    if held.signed_at is not None:
        who = await session.get(Person, held.signed_by_person_id)
        raise AlreadySigned(
            f"{inquiry.reference} was signed for by {who.name if who else 'someone'} at "
            f"{held.signed_at.isoformat()}."
        )
    held.signed_at, held.signed_by_person_id = now, signer.id
    record(
        session,
        inquiry,
        actor=actor,
        person_id=signer.id,
        action=EventAction.signed_for,
        details=details | {"person": signer.name},
    )
    await session.flush()
    return held


async def hand_over(
    session: AsyncSession,
    inquiry: Inquiry,
    department: Department,
    *,
    person_id: int,
    note: str,
    now: datetime,
    actor: str,
    by_person_id: int | None,
    details: dict[str, Any],
) -> InquiryAssignment:
    """The signed-for inquiry passes to a colleague of the same department, who now holds it."""
    check_action(inquiry, Action.hand_over)
    check_not_awaiting_arbitration(inquiry)
    colleague = await _colleague(session, department, person_id)
    held = await _held(session, inquiry)
    if held.signed_at is None:
        raise NotSigned(
            f"{inquiry.reference} is not signed for: sign for it first, then hand it over."
        )
    previous = held.signed_by_person_id
    if previous == colleague.id:
        raise AlreadySigned(f"{inquiry.reference} is already with {colleague.name}.")
    held.signed_at, held.signed_by_person_id = now, colleague.id
    record(
        session,
        inquiry,
        actor=actor,
        person_id=by_person_id,
        action=EventAction.handed_over,
        reason=note,
        details=details | {"from_person_id": previous, "to_person_id": colleague.id},
    )
    await session.flush()
    return held


async def add_note(
    session: AsyncSession,
    inquiry: Inquiry,
    department: Department,
    *,
    text: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> InquiryNote:
    """A note for colleagues: never sent, never shown to the citizen. Audited like any action
    (the event holds no text: the note is its own record)."""
    note = InquiryNote(
        inquiry_id=inquiry.id,
        department_id=department.id,
        at=now,
        author=actor,
        person_id=person_id,
        text=text,
    )
    session.add(note)
    await session.flush()
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.note_added,
        details=details | {"note_id": note.id},
    )
    return note


async def notes(session: AsyncSession, inquiry: Inquiry) -> list[InquiryNote]:
    return list(
        await session.scalars(
            select(InquiryNote).where(InquiryNote.inquiry_id == inquiry.id).order_by(InquiryNote.id)
        )
    )


async def merge(
    session: AsyncSession,
    inquiry: Inquiry,
    survivor: Inquiry,
    *,
    reason: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> None:
    """并单: `inquiry` repeats `survivor` (held by the same department, still open). It ends
    `merged`, pointing at the survivor, whose answer its citizen gets; its clock stops, and it
    counts in neither the on-time nor the overdue figures. The caller holds both row locks."""
    check_action(inquiry, Action.merge)
    check_not_awaiting_arbitration(inquiry)
    if inquiry.status is InquiryStatus.merged:
        raise MergeRefused(f"{inquiry.reference} is merged already.")
    if survivor.id == inquiry.id:
        raise MergeRefused(f"{inquiry.reference} cannot be merged into itself.")
    if survivor.status not in (InquiryStatus.new, InquiryStatus.assigned):
        raise MergeRefused(
            f"{survivor.reference} is {survivor.status}: merge into an inquiry still open."
        )
    if survivor.channel is not inquiry.channel:
        # A private answer must never be posted under a public comment, nor the reverse.
        raise MergeRefused(
            f"{inquiry.reference} is a {inquiry.channel} and {survivor.reference} a "
            f"{survivor.channel}: their answers go different ways, never merged."
        )
    await _check_mergeable(session, inquiry, survivor)
    status = inquiry.status
    await withdraw_pending(
        session, inquiry, why=f"merged into {survivor.reference}", now=now, actor=actor
    )
    transition(
        session,
        inquiry,
        InquiryStatus.merged,
        actor=actor,
        reason=reason,
        person_id=person_id,
        details=details | {"into": survivor.reference},
    )
    inquiry.merged_into_id, inquiry.merged_at, inquiry.merged_from_status = survivor.id, now, status
    record(
        session,
        inquiry,
        actor=actor,
        person_id=person_id,
        action=EventAction.merged,
        reason=reason,
        details=details | {"into": survivor.reference},
    )
    record(
        session,
        survivor,
        actor=actor,
        person_id=person_id,
        action=EventAction.merged,
        reason=reason,
        details=details | {"absorbed": inquiry.reference},
    )
    await session.flush()


async def _check_mergeable(session: AsyncSession, inquiry: Inquiry, survivor: Inquiry) -> None:
    """Nothing may be stranded by a merge: no decision the office has yet to take on it, no
    repeats already merged into it (their answer would point at a merged inquiry), and the
    survivor is not awaiting arbitration."""
    check_not_awaiting_arbitration(survivor)
    if await session.scalar(
        select(Inquiry.reference).where(Inquiry.merged_into_id == inquiry.id).limit(1)
    ):
        raise MergeRefused(
            f"Repeats are merged into {inquiry.reference}: merge them into "
            f"{survivor.reference} (or undo them) first."
        )
    pending = await session.scalar(
        select(
            exists().where(
                DeadlinePause.inquiry_id == inquiry.id,
                DeadlinePause.status == PauseStatus.requested,
            )
            | exists().where(
                DeadlineExtension.inquiry_id == inquiry.id,
                DeadlineExtension.status == ExtensionStatus.requested,
            )
        )
    )
    if pending:
        raise MergeRefused(
            f"A pause or an extension of {inquiry.reference} awaits the office's decision: "
            "merge it once that is decided."
        )


async def unmerge(
    session: AsyncSession,
    inquiry: Inquiry,
    *,
    reason: str,
    now: datetime,
    actor: str,
    person_id: int | None,
    details: dict[str, Any],
) -> Inquiry:
    """Undo a merge on the (Beijing) day it was made: back to the status it had. Its citizen's
    next message still opens a new inquiry (another may have opened meanwhile)."""
    if inquiry.status is not InquiryStatus.merged or inquiry.merged_at is None:
        raise MergeRefused(f"{inquiry.reference} is not merged.")
    if inquiry.merged_at.astimezone(CHINA).date() != now.astimezone(CHINA).date():
        raise MergeRefused(
            f"{inquiry.reference} was merged on "
            f"{inquiry.merged_at.astimezone(CHINA).date().isoformat()}: a merge is undone the "
            "same day only."
        )
    survivor = await lock(session, await session.get_one(Inquiry, inquiry.merged_into_id))
    restored = inquiry.merged_from_status or InquiryStatus.assigned
    transition(session, inquiry, restored, actor=actor, reason=reason, person_id=person_id)
    inquiry.merged_into_id = inquiry.merged_at = inquiry.merged_from_status = None
    for target, key in ((inquiry, "from"), (survivor, "released")):
        record(
            session,
            target,
            actor=actor,
            person_id=person_id,
            action=EventAction.unmerged,
            reason=reason,
            details=details | {key: (survivor if target is inquiry else inquiry).reference},
        )
    await session.flush()
    return survivor


@dataclass(frozen=True)
class Candidate:
    inquiry: Inquiry
    same_citizen: bool  # the same citizen on the same account, within MERGE_SAME_CITIZEN_DAYS
    similarity: float  # 0–100: rapidfuzz WRatio over the messages' text


async def merge_candidates(
    session: AsyncSession, inquiry: Inquiry, *, now: datetime
) -> list[Candidate]:
    """Open inquiries of the same department (a merge needs one holder) that this one may
    repeat: the same citizen within MERGE_SAME_CITIZEN_DAYS, or a similar text (rapidfuzz
    WRatio ≥ MERGE_SIMILARITY_MIN). Only the MERGE_CANDIDATES_MAX most recent are compared, so
    the cost is bounded whatever the department's size. Best first."""
    config = settings()
    if inquiry.department_id is None:
        return []
    recent = list(
        await session.scalars(
            select(Inquiry)
            .where(
                Inquiry.id != inquiry.id,
                Inquiry.department_id == inquiry.department_id,
                Inquiry.status.in_([InquiryStatus.new, InquiryStatus.assigned]),
            )
            .order_by(Inquiry.received_at.desc(), Inquiry.id.desc())
            .limit(config.merge_candidates_max)
        )
    )
    texts = await _texts(session, [inquiry, *recent])
    scores = {
        index: score
        for _, score, index in process.extract(
            texts[inquiry.id],
            [texts[other.id] for other in recent],
            scorer=fuzz.WRatio,
            limit=None,
        )
    }
    since = now - timedelta(days=config.merge_same_citizen_days)
    found = [
        Candidate(
            other,
            other.account_id == inquiry.account_id
            and other.citizen_id == inquiry.citizen_id
            and other.received_at >= since,
            round(scores.get(index, 0.0), 1),
        )
        for index, other in enumerate(recent)
    ]
    chosen = [c for c in found if c.same_citizen or c.similarity >= config.merge_similarity_min]
    return sorted(chosen, key=lambda c: (not c.same_citizen, -c.similarity, c.inquiry.id))


async def _texts(session: AsyncSession, inquiries: list[Inquiry]) -> dict[int, str]:
    """Each inquiry's messages, joined in order."""
    texts = {inquiry.id: "" for inquiry in inquiries}
    rows = await session.execute(
        select(InquiryMessage.inquiry_id, InquiryMessage.content)
        .where(InquiryMessage.inquiry_id.in_(list(texts)))
        .order_by(InquiryMessage.inquiry_id, InquiryMessage.seq)
    )
    for inquiry_id, content in rows:
        texts[inquiry_id] += content
    return texts
