from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from app.departments.models import Department, Level
from app.departments.schemas import DepartmentCreate, DepartmentUpdate
from app.problems import Conflict, NotFound, Problem


class DepartmentNotFound(NotFound):
    title = "Department not found"
    slug = "department-not-found"
    example_detail = "No department with code 'hefei-xyz'."


class DepartmentExists(Conflict):
    title = "Department already exists"
    slug = "department-exists"
    example_detail = "A department with code 'hefei-social-security' exists."


class OfficeExists(Conflict):
    title = "Region already has a supervising office"
    slug = "office-exists"
    example_detail = "Region 340100 (city) already has a supervising office: hefei-office."


class InvalidParent(Problem):
    status = 422
    title = "Invalid parent department"
    slug = "invalid-parent"
    example_detail = "A department cannot be its own parent."


def _region_length(department: type[Department]) -> ColumnElement[int]:
    return case(
        (department.level == Level.province, 2), (department.level == Level.city, 4), else_=6
    )


def office_encloses(office: type[Department], department: type[Department]) -> ColumnElement[bool]:
    """SQL: `office` is a supervising office whose region contains `department` (not itself).

    A region is the division-code prefix of the office's level: province 2 digits, city 4,
    county 6. An office is supervised by the offices above it, never by itself or its peers.
    """
    office_len = _region_length(office)
    return and_(
        office.is_supervising_office,
        office.active,
        office.id != department.id,
        func.left(office.region_code, office_len) == func.left(department.region_code, office_len),
        or_(
            office_len < _region_length(department),
            and_(office_len == _region_length(department), ~department.is_supervising_office),
        ),
    )


REGION_LENGTH = {Level.province: 2, Level.city: 4, Level.county: 6}


def in_region(office: Department, department: Department) -> bool:
    """`department` lies in `office`'s region (the division-code prefix of its level), or is it."""
    length = REGION_LENGTH.get(office.level, 6)
    return department.id == office.id or department.region_code.startswith(
        office.region_code[:length]
    )


def _with_parent() -> Select[Department]:
    return select(Department).options(joinedload(Department.parent))


async def get(session: AsyncSession, *, code: str) -> Department:
    """One department by code, with its parent loaded."""
    department = await session.scalar(_with_parent().where(Department.code == code))
    if department is None:
        raise DepartmentNotFound(f"No department with code {code!r}.")
    return department


def listing(*, level: Level | None, active: bool | None) -> Select[Department]:
    """Departments in a stable order, optionally filtered."""
    statement = _with_parent().order_by(Department.region_code, Department.code)
    if level is not None:
        statement = statement.where(Department.level == level)
    if active is not None:
        statement = statement.where(Department.active == active)
    return statement


async def _check_office_free(
    session: AsyncSession, *, level: Level, region_code: str, other_than: int | None
) -> None:
    """A region has one active supervising office; a deactivated one can be replaced."""
    statement = select(Department.code).where(
        Department.is_supervising_office,
        Department.active,
        Department.level == level,
        Department.region_code == region_code,
    )
    if other_than is not None:
        statement = statement.where(Department.id != other_than)
    existing = await session.scalar(statement)
    if existing is not None:
        raise OfficeExists(
            f"Region {region_code} ({level}) already has a supervising office: {existing}."
        )


async def _resolve_parent(
    session: AsyncSession, department: Department, parent_code: str
) -> Department:
    if parent_code == department.code:
        raise InvalidParent("A department cannot be its own parent.")
    parent = await get(session, code=parent_code)
    # Walk up: a parent chain must never loop back to the department.
    ancestor: Department | None = parent
    while ancestor is not None and ancestor.parent_id is not None:
        if ancestor.parent_id == department.id:
            raise InvalidParent(f"{parent_code} is below {department.code}; that makes a loop.")
        ancestor = await session.get(Department, ancestor.parent_id)
    return parent


async def create(session: AsyncSession, *, data: DepartmentCreate) -> Department:
    """Register a department (or a supervising office)."""
    if await session.scalar(select(Department.id).where(Department.code == data.code)):
        raise DepartmentExists(f"A department with code {data.code!r} exists.")
    department = Department(
        code=data.code,
        name=data.name,
        level=data.level,
        region_code=data.region_code,
        duties=data.duties,
        is_supervising_office=data.is_supervising_office,
        published_contacts=data.published_contacts,
        active=True,
    )
    if data.is_supervising_office:
        await _check_office_free(
            session, level=data.level, region_code=data.region_code, other_than=None
        )
    department.parent = (
        await _resolve_parent(session, department, data.parent_code) if data.parent_code else None
    )
    session.add(department)
    await session.flush()
    return department


async def update(session: AsyncSession, department: Department, *, data: DepartmentUpdate) -> None:
    """Change a department's name, duties, parent, office role or active flag."""
    changes = data.model_dump(exclude_unset=True)
    # Check before changing anything: a query would otherwise flush the half-made change first.
    becomes_office = changes.get("is_supervising_office", department.is_supervising_office)
    if becomes_office and changes.get("active", department.active):
        await _check_office_free(
            session,
            level=department.level,
            region_code=department.region_code,
            other_than=department.id,
        )
    if "parent_code" in changes:
        code = changes.pop("parent_code")
        department.parent = await _resolve_parent(session, department, code) if code else None
    for field, value in changes.items():
        if value is not None:
            setattr(department, field, value)
    await session.flush()


async def standing_in_for(session: AsyncSession, department: Department) -> Department:
    """`department` while it is active; once deactivated, the nearest active supervising office
    above it (itself when there is none: the caller decides what that means)."""
    if department.active:
        return department
    offices = await enclosing_offices(session, department)
    return offices[0] if offices else department


async def enclosing_offices(session: AsyncSession, department: Department) -> list[Department]:
    """Every supervising office above `department`, nearest first."""
    office = aliased(Department)
    target = aliased(Department)
    statement = (
        select(office)
        .join(target, target.id == department.id)
        .where(office_encloses(office, target))
        .options(joinedload(office.parent))
        .order_by(_region_length(office).desc())
    )
    return list(await session.scalars(statement))
