from datetime import datetime

import httpx
from pydantic import ConfigDict, Field, JsonValue, field_validator

from app.schemas import Schema

# Plain http only to this machine, for a test receiver; everything else must be https.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


class PushRegistrationCreate(Schema):
    url: str = Field(
        min_length=8,
        max_length=2048,
        description="Where notifications are POSTed: https (plain http only to 127.0.0.1 or "
        "localhost, for tests).",
        examples=["https://inbox-client.hefei-hrss.example/govinbox/push"],
    )

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parsed = _parse(value)
        if parsed is None:
            raise ValueError("must be an absolute URL with a host")
        scheme, host = parsed
        if scheme == "https" or (scheme == "http" and host in LOCAL_HOSTS):
            return value
        raise ValueError("must be https (plain http only to 127.0.0.1 or localhost)")


def _parse(value: str) -> tuple[str, str] | None:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return None
    if not url.host or url.userinfo or any(c.isspace() for c in value):
        return None
    return url.scheme, url.host


_REGISTRATION_EXAMPLE: dict[str, JsonValue] = {
    "department_code": "hefei-hrss",
    "url": "https://inbox-client.hefei-hrss.example/govinbox/push",
    "created_at": "2026-12-01T02:00:00Z",
    "last_success_at": "2026-12-01T02:05:00Z",
    "last_failure_at": None,
    "last_error": None,
    "consecutive_failures": 0,
}


class PushRegistrationRead(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [_REGISTRATION_EXAMPLE]})
    department_code: str
    url: str
    created_at: datetime
    last_success_at: datetime | None = Field(description="The last notification it accepted.")
    last_failure_at: datetime | None = Field(
        description="When a notification was last given up on after every retry; cleared by "
        "the next success."
    )
    last_error: str | None = Field(
        description="Why it was given up on: the HTTP status or the connection error."
    )
    consecutive_failures: int = Field(
        description="Notifications given up on since the last success."
    )


class PushRegistrationIssued(PushRegistrationRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [_REGISTRATION_EXAMPLE | {"secret": "gvp_Q2x5bWl0…(43 characters)"}]
        }
    )
    secret: str = Field(
        description="The signing secret. Shown once, here: verify X-Govinbox-Signature with it."
    )
