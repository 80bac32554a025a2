import string
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, field_validator

from app.referrals.models import ReferralChannel
from app.schemas import Schema

PLACEHOLDERS = {"name", "contact", "handles", "basis", "reference"}
Template = Annotated[
    str,
    Field(
        min_length=10,
        max_length=600,
        description="The citizen-facing text. Must contain {name} and {contact}; may use "
        "{handles}, {basis} and {reference}.",
        examples=[
            "您反映的事项由{name}办理（{handles}）。依据：{basis}。请通过{contact}联系办理。"
        ],
    ),
]


def check_template(value: str | None) -> str | None:
    """A referral must say who handles the matter and how to reach them: no generic text."""
    if value is None:
        return value
    try:
        parsed = [
            (field, spec, conversion)
            for _, field, spec, conversion in string.Formatter().parse(value)
            if field is not None
        ]
    except ValueError as exc:
        raise ValueError(f"template is not well formed: {exc}") from exc
    if any(spec or conversion for _, spec, conversion in parsed):
        # "{name:.0}" would print nothing: placeholders are filled in as they are.
        raise ValueError("placeholders take no format spec or conversion: write {name}, {contact}")
    names = {field for field, _, _ in parsed}
    if unknown := names - PLACEHOLDERS:
        raise ValueError(f"unknown placeholders: {', '.join(sorted(unknown))}")
    if not {"name", "contact"} <= names:
        raise ValueError(
            "the text must name who handles it ({name}) and how to reach them ({contact})"
        )
    return value


class ReferralEntryCreate(Schema):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$", examples=["hefei-court"])
    name: str = Field(min_length=2, max_length=200, examples=["合肥市中级人民法院"])
    handles: str = Field(min_length=2, max_length=1000, examples=["本市民商事案件的审判和执行"])
    channel: ReferralChannel
    contact: str = Field(min_length=2, max_length=300, examples=["0551-12368"])
    basis: str = Field(min_length=2, max_length=1000, examples=["《中华人民共和国民事诉讼法》"])
    template: Template

    _template = field_validator("template")(check_template)


class ReferralEntryUpdate(Schema):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    handles: str | None = Field(default=None, min_length=2, max_length=1000)
    contact: str | None = Field(default=None, min_length=2, max_length=300)
    basis: str | None = Field(default=None, min_length=2, max_length=1000)
    template: Template | None = None
    verified: StrictBool | None = Field(
        default=None, description="Set true once someone has checked name, contact and basis."
    )
    verification_note: str | None = Field(
        default=None, max_length=1000, description="Who checked it, how, when."
    )
    active: StrictBool | None = None

    _template = field_validator("template")(check_template)


class ReferralEntryRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "consumer-12315",
                    "name": "市场监管部门12315投诉举报热线",
                    "handles": "消费纠纷、商品和服务质量投诉，市场监管违法行为举报",
                    "channel": "phone",
                    "contact": "12315",
                    "basis": "《中华人民共和国消费者权益保护法》",
                    "template": "您反映的事项由{name}办理（{handles}）。请通过{contact}联系办理。",
                    "verified": True,
                    "verification_note": "national number, the same everywhere in China",
                    "active": True,
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-24T02:00:00Z",
                }
            ]
        }
    )

    code: str
    name: str
    handles: str
    channel: ReferralChannel
    contact: str
    basis: str
    template: str
    verified: StrictBool
    verification_note: str
    active: StrictBool
    created_at: datetime
    updated_at: datetime


class ReferralEntryUpdated(ReferralEntryRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "hefei-court",
                    "name": "合肥市中级人民法院",
                    "handles": "本市民商事案件的审判和执行",
                    "channel": "phone",
                    "contact": "0551-12368",
                    "basis": "《中华人民共和国民事诉讼法》",
                    "template": "您反映的事项由{name}办理（{handles}）。请通过{contact}联系办理。",
                    "verified": False,
                    "verification_note": "电话核实 2026-11-24",
                    "active": True,
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-25T02:00:00Z",
                    "rules_skipped": 1,
                }
            ]
        }
    )

    rules_skipped: int = Field(
        description="Active routing rules that point at this entry and that routing now skips, "
        "because the entry is unverified or inactive. Verify or reactivate it to use them again."
    )


class ReferRequest(Schema):
    entry_code: str = Field(description="The referral directory entry that handles it.")
    note: str = Field(
        default="",
        max_length=500,
        description="Optional words of the department, added to the citizen-facing text.",
    )
