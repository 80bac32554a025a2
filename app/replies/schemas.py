from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, ConfigDict, Field, StrictBool

from app.replies.models import GivenVia
from app.schemas import Schema


class ReplyCreate(Schema):
    """A reply to go out on the platform: `interim` (a substantive progress message: it meets
    the first-response due, the status stays) or `answer` (the inquiry becomes `replied`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "purpose": "answer",
                    "text": "您好，社保断缴后可在3个月内携带身份证到市民中心3号窗口补缴，"
                    "咨询电话0551-12333。",
                }
            ]
        }
    )

    purpose: Literal["interim", "answer"] = Field(examples=["answer"])
    text: str = Field(
        min_length=1,
        max_length=5000,
        examples=["您好，断缴3个月内可携带身份证到市民中心3号窗口补缴，咨询电话0551-12333。"],
    )


class AnswerGiven(Schema):
    """An answer given outside the platform: by phone, letter or in person. Nothing is sent;
    the inquiry becomes `replied`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "via": "phone",
                    "given_at": "2026-11-25T02:30:00Z",
                    "given_by": "王芳",
                    "text": "已电话告知市民补缴流程和所需材料，市民表示清楚。",
                }
            ]
        }
    )

    via: Literal[GivenVia.phone, GivenVia.letter, GivenVia.in_person] = Field(examples=["phone"])
    given_at: AwareDatetime = Field(
        description="When it was given, with its offset; not in the future, not before the "
        "inquiry arrived.",
        examples=["2026-11-25T02:30:00Z"],
    )
    given_by: str = Field(
        min_length=1, max_length=200, description="Who answered.", examples=["王芳"]
    )
    text: str = Field(
        min_length=2,
        max_length=5000,
        description="What was said, in short.",
        examples=["已电话告知市民补缴流程和所需材料"],
    )


class ReplyReview(Schema):
    approve: StrictBool = Field(examples=[True])
    note: str = Field(
        default="",
        max_length=2000,
        description="Why; required when refusing.",
        examples=["措辞准确，同意发布"],
    )


class TemplateCreate(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "social-security-answer",
                    "title": "社保补缴答复",
                    "body": "您好，您的留言（编号{reference}）已由{department}办理："
                    "【请填写处理结果】。如有疑问请致电0551-12333。",
                }
            ]
        }
    )

    code: str = Field(
        min_length=2,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        examples=["social-security-answer"],
    )
    title: str = Field(min_length=1, max_length=200, examples=["社保补缴答复"])
    body: str = Field(
        min_length=1,
        max_length=5000,
        examples=["您好，您的留言（编号{reference}）已由{department}办理：【请填写处理结果】。"],
        description="Variables {reference}, {due_date} and {department}; placeholders such as "
        "【请填写处理结果】 the responder must fill ({{ and }} for literal braces).",
    )


class TemplateUpdate(Schema):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=5000)
    active: StrictBool | None = None


class TemplateRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "social-security-answer",
                    "title": "社保补缴答复",
                    "body": "您好，您的留言（编号{reference}）已由{department}办理："
                    "【请填写处理结果】。",
                    "active": True,
                    "updated_at": "2026-11-24T03:00:00Z",
                }
            ]
        }
    )

    code: str
    title: str
    body: str
    active: bool
    updated_at: datetime


class Draft(Schema):
    """A template filled in for one inquiry; the placeholders are left for the responder."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "template": "social-security-answer",
                    "text": "您好，您的留言（编号WX20261124-000123）已由市人社局办理："
                    "【请填写处理结果】。",
                    "placeholders": ["【请填写处理结果】"],
                }
            ]
        }
    )

    template: str
    text: str
    placeholders: list[str] = Field(description="What the responder must still fill in.")
