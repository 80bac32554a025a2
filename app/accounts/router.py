from typing import Annotated

from fastapi import APIRouter, Query, status

from app import problems
from app.accounts import service
from app.accounts.models import Platform
from app.accounts.schemas import AccountCreate, AccountRead, AccountUpdate
from app.auth import AdminDep
from app.db import SessionDep
from app.departments import service as departments
from app.schemas import Page, PageDep, paginate

router = APIRouter(
    prefix="/api/v1/admin/accounts",
    tags=["admin: accounts"],
    responses=problems.doc(problems.Unauthorized),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register an account",
    responses=problems.doc(
        service.AccountExists, departments.DepartmentNotFound, service.InvalidOperators
    ),
)
async def create_account(data: AccountCreate, _: AdminDep, session: SessionDep) -> AccountRead:
    """Register a WeChat or Weibo account; secrets are accepted here and never returned."""
    return AccountRead.model_validate(await service.create(session, data=data))


@router.get("", summary="List accounts", responses=problems.doc(departments.DepartmentNotFound))
async def list_accounts(
    _: AdminDep,
    session: SessionDep,
    page: PageDep,
    department_code: Annotated[str | None, Query()] = None,
    platform: Annotated[Platform | None, Query()] = None,
) -> Page[AccountRead]:
    """Accounts by code, optionally of one department or platform."""
    department = await departments.get(session, code=department_code) if department_code else None
    return await paginate(
        session, service.listing(department=department, platform=platform), page, AccountRead
    )


@router.get("/{code}", summary="Read an account", responses=problems.doc(service.AccountNotFound))
async def read_account(code: str, _: AdminDep, session: SessionDep) -> AccountRead:
    """One account by code, with its staffing and which secrets are set."""
    return AccountRead.model_validate(await service.get(session, code=code))


@router.patch(
    "/{code}",
    summary="Update an account",
    responses=problems.doc(
        service.AccountNotFound, service.InvalidOperators, service.WrongPlatform
    ),
)
async def update_account(
    code: str, data: AccountUpdate, _: AdminDep, session: SessionDep
) -> AccountRead:
    """Change details, operators or secrets; a new EncodingAESKey starts a rotation."""
    account = await service.get(session, code=code)
    await service.update(session, account, data=data)
    return AccountRead.model_validate(account)


@router.delete(
    "/{code}", summary="Deactivate an account", responses=problems.doc(service.AccountNotFound)
)
async def deactivate_account(code: str, _: AdminDep, session: SessionDep) -> AccountRead:
    """Deactivate: its webhooks stop accepting messages; stored inquiries stay."""
    account = await service.get(session, code=code)
    await service.update(session, account, data=AccountUpdate(active=False))
    return AccountRead.model_validate(account)
