from datetime import datetime

from pydantic import ConfigDict, Field, StrictBool

from app.people.models import Role
from app.schemas import Schema


class PersonCreate(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["王芳"])
    contact: str = Field(default="", max_length=200, examples=["0551-12345678"])
    roles: list[Role] = Field(default_factory=list, examples=[["operator", "responder"]])


class PersonUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    contact: str | None = Field(default=None, max_length=200)
    roles: list[Role] | None = None
    active: StrictBool | None = None


class PersonRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "department_code": "hefei-hrss",
                    "name": "王芳",
                    "contact": "0551-12345678",
                    "roles": ["operator", "responder"],
                    "active": True,
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-24T02:00:00Z",
                }
            ]
        }
    )

    id: int
    department_code: str
    name: str
    contact: str
    roles: list[Role]
    active: StrictBool
    created_at: datetime
    updated_at: datetime
