from typing import Annotated

from fastapi import APIRouter, Query, status

from app import problems
from app.auth import AdminDep
from app.db import SessionDep
from app.referrals import service
from app.referrals.schemas import (
    ReferralEntryCreate,
    ReferralEntryRead,
    ReferralEntryUpdate,
    ReferralEntryUpdated,
)
from app.schemas import Page, PageDep, paginate

router = APIRouter(
    prefix="/api/v1/admin/referral-entries",
    tags=["admin: referral directory"],
    responses=problems.doc(problems.Unauthorized),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Add a referral directory entry",
    responses=problems.doc(service.ReferralEntryExists),
)
async def create_entry(
    data: ReferralEntryCreate, _: AdminDep, session: SessionDep
) -> ReferralEntryRead:
    """A competent body outside the service. It starts unverified: until someone checks it, it
    cannot appear in a citizen-facing text. Its template must name who handles the matter
    ({name}) and how to reach them ({contact})."""
    return ReferralEntryRead.model_validate(await service.create_entry(session, data=data))


@router.get("", summary="List the referral directory")
async def list_entries(
    _: AdminDep,
    session: SessionDep,
    page: PageDep,
    verified: Annotated[bool | None, Query()] = None,
) -> Page[ReferralEntryRead]:
    """Entries by code; the national numbers ship verified."""
    return await paginate(session, service.listing(verified=verified), page, ReferralEntryRead)


@router.get(
    "/{code}",
    summary="Read a referral directory entry",
    responses=problems.doc(service.ReferralEntryNotFound),
)
async def read_entry(code: str, _: AdminDep, session: SessionDep) -> ReferralEntryRead:
    """One entry by code."""
    return ReferralEntryRead.model_validate(await service.get_entry(session, code=code))


@router.patch(
    "/{code}",
    summary="Correct or verify a referral directory entry",
    responses=problems.doc(service.ReferralEntryNotFound),
)
async def update_entry(
    code: str, data: ReferralEntryUpdate, _: AdminDep, session: SessionDep
) -> ReferralEntryUpdated:
    """Set `verified` with a note of who checked it and how. Giving a new name, contact, basis,
    duties or template makes the entry unverified again unless `verified` is sent with it;
    sending a value it already has changes nothing. `rules_skipped` counts the active routing
    rules that routing now passes over because this entry is unverified or inactive."""
    entry = await service.get_entry(session, code=code)
    skipped = await service.update_entry(session, entry, data=data)
    read = ReferralEntryRead.model_validate(entry)
    return ReferralEntryUpdated(**read.model_dump(), rules_skipped=skipped)
