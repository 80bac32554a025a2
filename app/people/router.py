from fastapi import APIRouter, status

from app import problems
from app.auth import AdminDep
from app.db import SessionDep
from app.departments import service as departments
from app.people import service
from app.people.schemas import PersonCreate, PersonRead, PersonUpdate
from app.schemas import Page, PageDep, RowId, paginate

router = APIRouter(
    prefix="/api/v1/admin", tags=["admin: people"], responses=problems.doc(problems.Unauthorized)
)


@router.post(
    "/departments/{code}/people",
    status_code=status.HTTP_201_CREATED,
    summary="Add a person to a department",
    responses=problems.doc(departments.DepartmentNotFound),
)
async def create_person(
    code: str, data: PersonCreate, _: AdminDep, session: SessionDep
) -> PersonRead:
    """Add an account operator, responder or reviewer to a department."""
    department = await departments.get(session, code=code)
    return PersonRead.model_validate(await service.create(session, department, data=data))


@router.get(
    "/departments/{code}/people",
    summary="List a department's people",
    responses=problems.doc(departments.DepartmentNotFound),
)
async def list_people(
    code: str, _: AdminDep, session: SessionDep, page: PageDep
) -> Page[PersonRead]:
    """A department's people, active and inactive, by id."""
    department = await departments.get(session, code=code)
    return await paginate(session, service.of_department(department), page, PersonRead)


@router.get(
    "/people/{person_id}", summary="Read a person", responses=problems.doc(service.PersonNotFound)
)
async def read_person(person_id: RowId, _: AdminDep, session: SessionDep) -> PersonRead:
    """One person by id."""
    return PersonRead.model_validate(await service.get(session, person_id=person_id))


@router.patch(
    "/people/{person_id}", summary="Update a person", responses=problems.doc(service.PersonNotFound)
)
async def update_person(
    person_id: RowId, data: PersonUpdate, _: AdminDep, session: SessionDep
) -> PersonRead:
    """Change name, contact, roles or active flag; omitted fields stay."""
    person = await service.get(session, person_id=person_id)
    await service.update(session, person, data=data)
    return PersonRead.model_validate(person)


@router.delete(
    "/people/{person_id}",
    summary="Deactivate a person",
    responses=problems.doc(service.PersonNotFound),
)
async def deactivate_person(person_id: RowId, _: AdminDep, session: SessionDep) -> PersonRead:
    """Deactivate (never delete: the audit trail names them); their API keys stop working."""
    person = await service.get(session, person_id=person_id)
    await service.update(session, person, data=PersonUpdate(active=False))
    return PersonRead.model_validate(person)
