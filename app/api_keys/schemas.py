from datetime import datetime
from typing import Self

from pydantic import ConfigDict, Field, JsonValue, model_validator

from app.people.models import Role
from app.schemas import Schema


class ApiKeyCreate(Schema):
    """A key is held by one person of the department, or by a named client system."""

    person_id: int | None = Field(default=None, description="The person who will use the key.")
    client_name: str | None = Field(
        default=None, min_length=2, max_length=100, examples=["hefei-hrss-inbox-client"]
    )
    label: str = Field(default="", max_length=100, examples=["front desk PC"])
    roles: list[Role] | None = Field(
        default=None,
        description="A client system's roles (default: responder). A person's key acts with the "
        "person's roles, so give none for it.",
        examples=[["responder"]],
    )

    @model_validator(mode="after")
    def _one_holder(self) -> Self:
        if (self.person_id is None) == (self.client_name is None):
            raise ValueError("give exactly one of person_id or client_name")
        if self.person_id is not None and self.roles is not None:
            raise ValueError("a person's key acts with the person's roles: give no roles")
        if self.client_name is not None:
            self.roles = list(
                dict.fromkeys(self.roles if self.roles is not None else [Role.responder])
            )
        return self


_KEY_EXAMPLE: dict[str, JsonValue] = {
    "id": 7,
    "department_code": "hefei-hrss",
    "person_id": 12,
    "client_name": None,
    "roles": None,
    "label": "front desk",
    "prefix": "gvk_Q2x5bWl0",
    "created_at": "2026-11-24T02:00:00Z",
    "last_used_at": None,
    "revoked_at": None,
}


class ApiKeyRead(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_EXAMPLE]})
    id: int
    department_code: str
    person_id: int | None
    client_name: str | None
    roles: list[Role] | None = Field(
        description="A client system's roles; null for a person's key, which acts with the "
        "person's roles."
    )
    label: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyRead):
    model_config = ConfigDict(
        json_schema_extra={"examples": [_KEY_EXAMPLE | {"key": "gvk_Q2x5bWl0…(43 characters)"}]}
    )
    key: str = Field(description="The key itself. Shown once: only its hash is stored.")
