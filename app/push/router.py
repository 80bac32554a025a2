from fastapi import APIRouter, status

from app import problems
from app.auth import AdminDep
from app.db import SessionDep
from app.departments import service as departments
from app.push import service
from app.push.models import PushRegistration
from app.push.schemas import PushRegistrationCreate, PushRegistrationIssued, PushRegistrationRead

router = APIRouter(
    prefix="/api/v1/admin/departments/{code}/push",
    tags=["admin: push notifications"],
    responses=problems.doc(problems.Unauthorized),
)


def _issued(registration: PushRegistration) -> PushRegistrationIssued:
    read = PushRegistrationRead.model_validate(registration)
    return PushRegistrationIssued.model_validate(
        {**read.model_dump(), "secret": registration.secret}
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a department's push webhook",
    responses=problems.doc(departments.DepartmentNotFound, service.PushRegistrationExists),
)
async def register_push(
    code: str, data: PushRegistrationCreate, _: AdminDep, session: SessionDep
) -> PushRegistrationIssued:
    """Notifications ("poll now") go to the URL, signed; the secret is shown only here."""
    department = await departments.get(session, code=code)
    return _issued(await service.register(session, department, url=data.url))


@router.get(
    "",
    summary="Read a department's push registration",
    responses=problems.doc(departments.DepartmentNotFound, service.PushRegistrationNotFound),
)
async def read_push(code: str, _: AdminDep, session: SessionDep) -> PushRegistrationRead:
    """The URL and delivery health (last success, a failure given up on); never the secret."""
    department = await departments.get(session, code=code)
    return PushRegistrationRead.model_validate(await service.get(session, department))


@router.post(
    "/secret",
    summary="Rotate a push registration's secret",
    responses=problems.doc(departments.DepartmentNotFound, service.PushRegistrationNotFound),
)
async def rotate_push_secret(code: str, _: AdminDep, session: SessionDep) -> PushRegistrationIssued:
    """A new signing secret, shown only here; the old one stops signing at once."""
    department = await departments.get(session, code=code)
    return _issued(await service.rotate_secret(session, department))


@router.delete(
    "",
    summary="Delete a department's push registration",
    responses=problems.doc(departments.DepartmentNotFound, service.PushRegistrationNotFound),
)
async def delete_push(code: str, _: AdminDep, session: SessionDep) -> PushRegistrationRead:
    """Stop notifications (one already queued is dropped); the department can still poll."""
    department = await departments.get(session, code=code)
    return PushRegistrationRead.model_validate(await service.unregister(session, department))
