from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.api_keys.models import ApiKey
from app.api_keys.schemas import ApiKeyCreate
from app.auth import hash_api_key, new_api_key
from app.departments.models import Department
from app.people import service as people
from app.problems import NotFound, Problem


class ApiKeyNotFound(NotFound):
    title = "API key not found"
    slug = "api-key-not-found"
    example_detail = "No API key with id 7."


class HolderNotInDepartment(Problem):
    status = 422
    title = "Key holder is not an active person of the department"
    slug = "holder-not-in-department"
    example_detail = "Person 12 is not an active person of hefei-social-security."


async def issue(
    session: AsyncSession, department: Department, *, data: ApiKeyCreate
) -> tuple[ApiKey, str]:
    """Create a key for a person or client system of `department`; returns it with the key."""
    if data.person_id is not None:
        person = await people.get(session, person_id=data.person_id)
        if person.department_id != department.id or not person.active:
            raise HolderNotInDepartment(
                f"Person {person.id} is not an active person of {department.code}."
            )
    key = new_api_key()
    api_key = ApiKey(
        department=department,
        person_id=data.person_id,
        client_name=data.client_name,
        roles=[role.value for role in data.roles] if data.roles is not None else None,
        label=data.label,
        prefix=key[:12],
        key_hash=hash_api_key(key),
    )
    session.add(api_key)
    await session.flush()
    return api_key, key


def of_department(department: Department) -> Select[ApiKey]:
    """A department's keys, newest first (hashes are never returned)."""
    return (
        select(ApiKey)
        .where(ApiKey.department_id == department.id)
        .options(joinedload(ApiKey.department))
        .order_by(ApiKey.id.desc())
    )


async def revoke(session: AsyncSession, *, key_id: int, now: datetime) -> ApiKey:
    """Revoke a key; revoking twice keeps the first time."""
    api_key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id).options(joinedload(ApiKey.department))
    )
    if api_key is None:
        raise ApiKeyNotFound(f"No API key with id {key_id}.")
    if api_key.revoked_at is None:
        api_key.revoked_at = now
        await session.flush()
    return api_key
