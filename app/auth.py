"""Who is calling: the bootstrap admin, or a person (or client system) of a department."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, params
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from app.api_keys.models import ApiKey
from app.db import SessionDep
from app.departments.models import Department
from app.people.models import Person, Role
from app.problems import Unauthorized
from app.roles import Action, require
from app.settings import settings

KEY_PREFIX = "gvk_"
_bearer = HTTPBearer(auto_error=False, description="Admin token or a department API key.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def new_api_key() -> str:
    """A fresh high-entropy key; only its hash is stored."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def require_admin(credentials: BearerDep) -> None:
    """Accept only the bootstrap admin token."""
    configured = settings().admin_token
    given = credentials.credentials if credentials else ""
    if configured is None or not hmac.compare_digest(
        given.encode(), configured.get_secret_value().encode()
    ):
        raise Unauthorized("The admin API needs the admin bearer token.")


AdminDep = Annotated[None, Depends(require_admin)]


@dataclass(frozen=True)
class Principal:
    """The department behind an API key, and the person or client system holding it."""

    department: Department
    person: Person | None
    client_name: str | None
    api_key_id: int
    roles: frozenset[Role]

    def require(self, action: Action) -> None:
        """Raise RoleRequired (403) unless the key carries the role `action` needs."""
        require(self.roles, action)

    @property
    def audit(self) -> dict[str, Any]:
        """Who acted, as audit events record it: the person, and the key they used."""
        return {
            "actor": self.actor,
            "person_id": self.person.id if self.person else None,
            "details": {"api_key_id": self.api_key_id},
        }

    @property
    def actor(self) -> str:
        """How audit records name who acted."""
        if self.person is not None:
            return f"person:{self.person.id} {self.person.name} ({self.department.code})"
        return f"client:{self.client_name} ({self.department.code})"


_LAST_USED_RESOLUTION = timedelta(minutes=5)


async def current_principal(credentials: BearerDep, session: SessionDep) -> Principal:
    """Resolve a department API key; revoked keys and inactive departments or people fail."""
    if credentials is None or not credentials.credentials.startswith(KEY_PREFIX):
        raise Unauthorized("A department API key is required (Authorization: Bearer gvk_…).")
    found = (
        await session.execute(
            select(ApiKey, Department, Person)  # one round trip: every request pays it
            .join(Department, Department.id == ApiKey.department_id)
            .outerjoin(Person, Person.id == ApiKey.person_id)
            .where(ApiKey.key_hash == hash_api_key(credentials.credentials))
        )
    ).one_or_none()
    if found is None or found[0].revoked_at is not None:
        raise Unauthorized("The API key is unknown or revoked.")
    key, department, person = found
    if not department.active or (person is not None and not person.active):
        raise Unauthorized("The API key's department or holder is no longer active.")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
        key.last_used_at = now
    # A person's key acts with the person's roles (changed on the person, in effect at once).
    roles = person.roles if person is not None else key.roles or []
    return Principal(department, person, key.client_name, key.id, frozenset(map(Role, roles)))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


@dataclass(frozen=True)
class Requires:
    """A route dependency: the caller's key carries the role `action` needs (README "Roles").
    It answers the same for every reference, so a refusal tells nothing about an inquiry."""

    action: Action

    def __call__(self, principal: CurrentPrincipal) -> Principal:
        principal.require(self.action)
        return principal


def acting(action: Action) -> params.Depends:
    """`dependencies=[acting(Action.transfer)]` on a route that does `action`."""
    return params.Depends(Requires(action))
