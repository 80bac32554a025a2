from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.departments.models import Department
from app.people.models import Person
from app.people.schemas import PersonCreate, PersonUpdate
from app.problems import NotFound


class PersonNotFound(NotFound):
    title = "Person not found"
    slug = "person-not-found"
    example_detail = "No person with id 42."


async def get(session: AsyncSession, *, person_id: int) -> Person:
    """One person by id, with their department."""
    person = await session.scalar(
        select(Person).where(Person.id == person_id).options(joinedload(Person.department))
    )
    if person is None:
        raise PersonNotFound(f"No person with id {person_id}.")
    return person


def of_department(department: Department) -> Select[Person]:
    """A department's people, in a stable order."""
    return (
        select(Person)
        .where(Person.department_id == department.id)
        .options(joinedload(Person.department))
        .order_by(Person.id)
    )


async def create(session: AsyncSession, department: Department, *, data: PersonCreate) -> Person:
    """Add a person to a department."""
    person = Person(
        department=department,
        name=data.name,
        contact=data.contact,
        roles=sorted(set(data.roles)),
        active=True,
    )
    session.add(person)
    await session.flush()
    return person


async def update(session: AsyncSession, person: Person, *, data: PersonUpdate) -> None:
    """Change a person's name, contact, roles or active flag; omitted fields stay."""
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(person, field, sorted(set(value)) if field == "roles" else value)
    await session.flush()
