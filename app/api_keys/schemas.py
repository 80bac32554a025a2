from datetime import datetime
from typing import Self

from pydantic import Field, model_validator

from app.schemas import Schema


class ApiKeyCreate(Schema):
    """A key is held by one person of the department, or by a named client system."""

    person_id: int | None = Field(default=None, description="The person who will use the key.")
    client_name: str | None = Field(
        default=None, min_length=2, max_length=100, examples=["hefei-hrss-inbox-client"]
    )
    label: str = Field(default="", max_length=100, examples=["front desk PC"])

    @model_validator(mode="after")
    def _one_holder(self) -> Self:
        if (self.person_id is None) == (self.client_name is None):
            raise ValueError("give exactly one of person_id or client_name")
        return self


class ApiKeyRead(Schema):
    id: int
    department_code: str
    person_id: int | None
    client_name: str | None
    label: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(description="The key itself. Shown once: only its hash is stored.")
