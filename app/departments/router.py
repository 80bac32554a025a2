from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status

from app import problems
from app.auth import AdminDep
from app.clock import NowDep
from app.db import SessionDep
from app.departments import service
from app.departments.models import Department, Level
from app.departments.schemas import (
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    SupervisingOffices,
)
from app.routing import transfers
from app.schemas import Page, PageDep, paginate

router = APIRouter(
    prefix="/api/v1/admin/departments",
    tags=["admin: departments"],
    responses=problems.doc(problems.Unauthorized),
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a department",
    responses=problems.doc(
        service.DepartmentExists, service.OfficeExists, service.DepartmentNotFound
    ),
)
async def create_department(
    data: DepartmentCreate, _: AdminDep, session: SessionDep
) -> DepartmentRead:
    """Register a department, or the supervising office (办公厅/办公室) of a region."""
    department = await service.create(session, data=data)
    return DepartmentRead.model_validate(department)


@router.get("", summary="List departments")
async def list_departments(
    _: AdminDep,
    session: SessionDep,
    page: PageDep,
    level: Annotated[Level | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
) -> Page[DepartmentRead]:
    """Departments ordered by region code, then code."""
    return await paginate(
        session, service.listing(level=level, active=active), page, DepartmentRead
    )


@router.get(
    "/{code}", summary="Read a department", responses=problems.doc(service.DepartmentNotFound)
)
async def read_department(code: str, _: AdminDep, session: SessionDep) -> DepartmentRead:
    """One department by its code."""
    return DepartmentRead.model_validate(await service.get(session, code=code))


@router.patch(
    "/{code}",
    summary="Update a department",
    responses=problems.doc(service.DepartmentNotFound, service.OfficeExists, service.InvalidParent),
)
async def update_department(
    code: str, data: DepartmentUpdate, _: AdminDep, session: SessionDep, now: NowDep
) -> DepartmentRead:
    """Change name, duties, parent, office role or active flag; omitted fields stay.
    Deactivating hands its open work on, as DELETE does."""
    department = await service.get(session, code=code)
    await _update(session, department, data, now=now)
    return DepartmentRead.model_validate(department)


async def _update(
    session: SessionDep, department: Department, data: DepartmentUpdate, *, now: datetime
) -> None:
    was_active = department.active
    await service.update(session, department, data=data)
    if was_active and not department.active:
        await transfers.hand_back_work(session, department, now=now, actor="admin")


@router.delete(
    "/{code}",
    summary="Deactivate a department",
    responses=problems.doc(service.DepartmentNotFound, transfers.WorkWithoutAHome),
)
async def deactivate_department(
    code: str, _: AdminDep, session: SessionDep, now: NowDep
) -> DepartmentRead:
    """Deactivate (never delete: its inquiries and audit trail stay); its API keys stop working.
    In the same transaction its open inquiries go to their dispatcher (the account's owning
    department; when that is this department, the nearest active office), inquiries awaiting its
    arbitration go to the next office up, and pending extension and pause decisions follow the
    new holder's office; each move is audited. 409 when some work has nowhere to go."""
    department = await service.get(session, code=code)
    await _update(session, department, DepartmentUpdate(active=False), now=now)
    return DepartmentRead.model_validate(department)


@router.get(
    "/{code}/supervising-offices",
    summary="Supervising offices of a department",
    responses=problems.doc(service.DepartmentNotFound),
)
async def supervising_offices(code: str, _: AdminDep, session: SessionDep) -> SupervisingOffices:
    """The nearest office (arbitrates, approves extensions) and every enclosing one (reads)."""
    department = await service.get(session, code=code)
    offices = [
        DepartmentRead.model_validate(o)
        for o in await service.enclosing_offices(session, department)
    ]
    return SupervisingOffices(nearest=offices[0] if offices else None, enclosing=offices)
