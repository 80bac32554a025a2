from datetime import date, datetime
from typing import Annotated, Self

from pydantic import ConfigDict, Field, SecretStr, StrictBool, field_validator, model_validator

from app.accounts.models import AccountType, Platform
from app.departments.models import Level
from app.schemas import Schema

ACCOUNT_CODE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
AccountCode = Annotated[
    str,
    Field(
        pattern=ACCOUNT_CODE_PATTERN,
        description="Used in the webhook URL: /webhooks/{platform}/{code}.",
        examples=["hefei-gov-wechat"],
    ),
]
WeChatOriginalId = Annotated[
    str, Field(pattern=r"^gh_[A-Za-z0-9]{6,32}$", examples=["gh_10f6c3c3ac5a"])
]
WeChatAppId = Annotated[str, Field(pattern=r"^wx[0-9a-zA-Z]{16}$", examples=["wx2c2769f8efd9abc2"])]
WeiboUid = Annotated[str, Field(pattern=r"^[0-9]{1,20}$", examples=["1902538057"])]


def _check_ack_text(value: str | None) -> str | None:
    if value is not None:
        rest = value.replace("{reference}", "").replace("{code}", "").replace("{link}", "")
        if "{" in rest or "}" in rest:
            raise ValueError(
                "ack_text may contain only the placeholders {reference}, {code} and {link}"
            )
    return value


TemplateId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]{0,128}$",
        description="The template's id in the WeChat back office; an empty string removes it.",
    ),
]
_Keyword = Annotated[str, Field(pattern=r"^[a-z_]{1,32}[0-9]{0,3}$")]
NotificationFields = Annotated[
    dict[_Keyword, Annotated[str, Field(max_length=20)]],
    Field(
        max_length=5,
        description="A template's keywords and their texts ({reference}, {status} and {date} are "
        "filled in; a `thing` keyword takes at most 20 characters, a `phrase` 5).",
        examples=[{"character_string1": "{reference}", "phrase2": "{status}", "time3": "{date}"}],
    ),
]


class Notifications(Schema):
    """Where the window has closed (docs/platforms.md, the ladder): what the account may send."""

    subscribe_template_id: TemplateId | None = Field(
        default=None,
        description="订阅通知: the subscription-notification template (service accounts only). "
        "Sent where the citizen accepted it.",
    )
    subscribe_long_term: StrictBool | None = Field(
        default=None,
        description="Long-term subscription (government accounts qualify): a grant holds; "
        "false: one notification per grant. Default true.",
    )
    template_id: TemplateId | None = Field(
        default=None,
        description="模板消息: the template-message template (verified service accounts only).",
    )
    subscribe_fields: NotificationFields | None = Field(
        default=None, description="The subscription template's keywords. Unset: SUBSCRIBE_FIELDS."
    )
    template_fields: NotificationFields | None = Field(
        default=None, description="The template message's keywords. Unset: TEMPLATE_FIELDS."
    )


AckText = Annotated[
    str,
    Field(
        min_length=2,
        max_length=280,  # Weibo passive replies stay under 300 characters
        description="Acknowledgement for the message that opens an inquiry; {reference} becomes "
        "its reference number.",
        examples=["您的留言已收到，编号{reference}。我们将在规定时限内答复。"],
    ),
]


def _check_aes_key(value: SecretStr | None) -> SecretStr | None:
    # 43 characters of [A-Za-z0-9]; a 41-char or '+'/'=' mangled key is a known misconfiguration.
    if value is not None:
        secret = value.get_secret_value()
        if len(secret) != 43 or not secret.isascii() or not secret.isalnum():
            raise ValueError("EncodingAESKey must be 43 characters of A-Z, a-z and 0-9")
    return value


class AccountSecrets(Schema):
    """Write-only platform secrets: accepted here, never returned, never logged."""

    wechat_token: SecretStr | None = Field(default=None, description="WeChat Token (3–32 chars).")
    wechat_encoding_aes_key: SecretStr | None = Field(
        default=None,
        description="WeChat EncodingAESKey. Setting a new one keeps the old one as the previous "
        "key, accepted during the rotation.",
    )
    wechat_app_secret: SecretStr | None = Field(default=None, min_length=8, max_length=128)
    weibo_app_secret: SecretStr | None = Field(default=None, min_length=8, max_length=128)
    weibo_access_token: SecretStr | None = Field(
        default=None,
        min_length=8,
        max_length=256,
        description="The fan-service access token (粉丝服务平台 → 开发者模式), for replies.",
    )

    _aes = field_validator("wechat_encoding_aes_key")(_check_aes_key)

    @field_validator("wechat_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if not (3 <= len(secret) <= 32) or not secret.isascii() or not secret.isalnum():
                raise ValueError("WeChat Token must be 3–32 characters of A-Z, a-z and 0-9")
        return value


class AccountCreate(AccountSecrets, Notifications):
    comments_enabled: StrictBool = Field(
        default=False,
        description="WeChat 留言管理 is on: the articles' comments are polled into inquiries.",
    )
    code: AccountCode
    platform: Platform
    account_type: AccountType
    verified: StrictBool = Field(default=False, description="认证: verified by the platform.")
    display_name: str = Field(min_length=1, max_length=200, examples=["合肥发布"])
    department_code: str = Field(description="The owning department.")
    level: Level | None = Field(default=None, description="Defaults to the department's level.")
    wechat_original_id: WeChatOriginalId | None = None
    wechat_app_id: WeChatAppId | None = None
    weibo_uid: WeiboUid | None = None
    filing_number: str | None = Field(default=None, max_length=100, description="备案编号")
    filing_date: date | None = Field(default=None, description="备案日期")
    operator_ids: list[int] = Field(default_factory=list, description="People who run it.")
    ack_enabled: StrictBool = False
    ack_text: AckText | None = Field(default=None, description="Defaults to a standard text.")
    weibo_window_hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 7,
        description="Weibo only: the reply window after a fan's message, where it differs from "
        "WEIBO_WINDOW_HOURS (48).",
    )

    _ack = field_validator("ack_text")(_check_ack_text)

    @model_validator(mode="after")
    def _platform_fits(self) -> Self:
        is_weibo = self.platform is Platform.weibo
        if is_weibo != (self.account_type is AccountType.weibo):
            raise ValueError(
                f"account_type {self.account_type} does not fit platform {self.platform}"
            )
        wechat_fields = (
            self.wechat_original_id,
            self.wechat_app_id,
            self.wechat_token,
            self.wechat_encoding_aes_key,
            self.wechat_app_secret,
        )
        if is_weibo and any(v is not None for v in wechat_fields):
            raise ValueError("a Weibo account takes no WeChat identifiers or secrets")
        weibo_fields = (self.weibo_uid, self.weibo_app_secret, self.weibo_access_token)
        if not is_weibo and (
            any(v is not None for v in weibo_fields) or self.weibo_window_hours is not None
        ):
            raise ValueError("a WeChat account takes no Weibo identifiers or secrets")
        if self.account_type is not AccountType.wechat_service and (
            self.subscribe_template_id or self.template_id
        ):
            raise ValueError("notification templates are for WeChat service accounts only")
        return self


class AccountUpdate(AccountSecrets, Notifications):
    comments_enabled: StrictBool | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    account_type: AccountType | None = None
    verified: StrictBool | None = None
    department_code: str | None = None
    wechat_original_id: WeChatOriginalId | None = None
    wechat_app_id: WeChatAppId | None = None
    weibo_uid: WeiboUid | None = None
    filing_number: str | None = Field(default=None, max_length=100)
    filing_date: date | None = None
    operator_ids: list[int] | None = None
    ack_enabled: StrictBool | None = None
    ack_text: AckText | None = None
    weibo_window_hours: float | None = Field(
        default=None,
        gt=0,
        le=24 * 7,
        description="Weibo only: the reply window after a fan's message, where it differs from "
        "WEIBO_WINDOW_HOURS (48).",
    )
    end_key_rotation: StrictBool = Field(
        default=False, description="Forget the previous EncodingAESKey: the rotation is over."
    )
    active: StrictBool | None = None

    _ack = field_validator("ack_text")(_check_ack_text)


class AccountRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "hefei-wechat",
                    "platform": "wechat",
                    "account_type": "wechat_service",
                    "verified": True,
                    "display_name": "合肥发布",
                    "department_code": "hefei-office",
                    "level": "city",
                    "wechat_original_id": "gh_10f6c3c3ac5a",
                    "wechat_app_id": "wx2c2769f8efd9abc2",
                    "weibo_uid": None,
                    "filing_number": "皖网信备34010012345号",
                    "filing_date": "2026-01-05",
                    "active": True,
                    "operator_ids": [12, 13],
                    "operators_required": 2,
                    "staffing_ok": True,
                    "ack_enabled": True,
                    "ack_text": "您的留言已收到，编号{reference}。",
                    "weibo_window_hours": None,
                    "subscribe_template_id": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
                    "subscribe_long_term": True,
                    "template_id": None,
                    "subscribe_fields": None,
                    "template_fields": None,
                    "may_use": ["customer_service_message", "subscribe_notification"],
                    "comments_enabled": False,
                    "publications_known": True,
                    "publications_error": None,
                    "publications_checked_at": "2026-11-24T18:30:00Z",
                    "has_wechat_token": True,
                    "has_wechat_encoding_aes_key": True,
                    "key_rotation_in_progress": False,
                    "has_wechat_app_secret": True,
                    "has_weibo_app_secret": False,
                    "has_weibo_access_token": False,
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-24T02:00:00Z",
                }
            ]
        }
    )

    code: str
    platform: Platform
    account_type: AccountType
    verified: StrictBool
    display_name: str
    department_code: str
    level: Level
    wechat_original_id: str | None
    wechat_app_id: str | None
    weibo_uid: str | None
    filing_number: str | None
    filing_date: date | None
    active: StrictBool
    operator_ids: list[int]
    ack_enabled: StrictBool = Field(
        description="Answer the message that opens an inquiry with ack_text."
    )
    ack_text: str
    weibo_window_hours: float | None
    subscribe_template_id: str | None
    subscribe_long_term: StrictBool
    template_id: str | None
    subscribe_fields: dict[str, str] | None
    template_fields: dict[str, str] | None
    comments_enabled: StrictBool
    publications_known: StrictBool = Field(
        description="Its publications are known (the daily pull worked). False: unknown, never "
        "zero; `publications_error` says why."
    )
    publications_error: str | None
    publications_checked_at: datetime | None
    may_use: list[str] = Field(
        description="What replies may go through: customer_service_message (verified accounts; "
        "Weibo's fan-service reply), subscribe_notification, template_message. The answer page "
        "is always there."
    )
    operators_required: int = Field(
        description="2 for provincial-department and city accounts, 1 for county."
    )
    staffing_ok: StrictBool = Field(description="Enough active operators for the staffing rule.")
    has_wechat_token: StrictBool
    has_wechat_encoding_aes_key: StrictBool
    key_rotation_in_progress: StrictBool = Field(
        description="A previous EncodingAESKey is still accepted."
    )
    has_wechat_app_secret: StrictBool
    has_weibo_app_secret: StrictBool
    has_weibo_access_token: StrictBool
    created_at: datetime
    updated_at: datetime
