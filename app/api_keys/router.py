from datetime import UTC, datetime

from fastapi import APIRouter, status

from app import problems
from app.api_keys import service
from app.api_keys.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyRead
from app.auth import AdminDep
from app.db import SessionDep
from app.departments import service as departments
from app.people.service import PersonNotFound
from app.schemas import Page, PageDep, RowId, paginate

router = APIRouter(
    prefix="/api/v1/admin", tags=["admin: API keys"], responses=problems.doc(problems.Unauthorized)
)


@router.post(
    "/departments/{code}/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a department API key",
    responses=problems.doc(
        departments.DepartmentNotFound, PersonNotFound, service.HolderNotInDepartment
    ),
)
async def issue_api_key(
    code: str, data: ApiKeyCreate, _: AdminDep, session: SessionDep
) -> ApiKeyIssued:
    """Issue a key for a person or client system of the department. The key is shown only here."""
    department = await departments.get(session, code=code)
    api_key, key = await service.issue(session, department, data=data)
    return ApiKeyIssued.model_validate(
        {**ApiKeyRead.model_validate(api_key).model_dump(), "key": key}
    )


@router.get(
    "/departments/{code}/api-keys",
    summary="List a department's API keys",
    responses=problems.doc(departments.DepartmentNotFound),
)
async def list_api_keys(
    code: str, _: AdminDep, session: SessionDep, page: PageDep
) -> Page[ApiKeyRead]:
    """Keys with holder, prefix and use; never the key or its hash."""
    department = await departments.get(session, code=code)
    return await paginate(session, service.of_department(department), page, ApiKeyRead)


@router.delete(
    "/api-keys/{key_id}",
    summary="Revoke an API key",
    responses=problems.doc(service.ApiKeyNotFound),
)
async def revoke_api_key(key_id: RowId, _: AdminDep, session: SessionDep) -> ApiKeyRead:
    """Revoke at once; requests with the key fail from now on."""
    api_key = await service.revoke(session, key_id=key_id, now=datetime.now(UTC))
    return ApiKeyRead.model_validate(api_key)
