from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from app.inquiries.models import Channel, InquiryKind
from app.routing.models import RoutingRule
from app.routing.rules import PatternError, compile_pattern
from app.schemas import Schema

Keywords = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=50)]],
    Field(max_length=200, description="Any one of them in the text matches."),
]
Pattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=500,
        description="RE2 syntax (no backreferences or lookaround; matching is linear time).",
        examples=["(断缴|补缴|欠缴).{0,10}社保|社保.{0,10}(断缴|补缴|欠缴)"],
    ),
]
RegionPrefix = Annotated[
    str,
    Field(
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6})$",
        description="Division-code prefix of the account's region: 2, 4 or 6 digits.",
    ),
]


def _valid_pattern(value: str | None) -> str | None:
    if value is not None:
        try:
            compile_pattern(value)
        except PatternError as exc:
            raise ValueError(str(exc)) from exc
    return value


class KindRuleCreate(Schema):
    kind: InquiryKind
    priority: int = Field(ge=0, le=100_000, description="Lower is tried first.")
    keywords: Keywords = Field(default_factory=list)
    pattern: Pattern | None = None

    _pattern = field_validator("pattern")(_valid_pattern)

    @model_validator(mode="after")
    def _matches_something(self) -> Self:
        if not self.keywords and not self.pattern:
            raise ValueError("a kind rule needs keywords or a pattern")
        return self


class KindRuleRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "kind": "complaint",
                    "priority": 10,
                    "keywords": ["投诉", "拖欠", "噪音", "吵得"],
                    "pattern": None,
                    "active": True,
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-24T02:00:00Z",
                }
            ]
        }
    )

    id: int
    kind: InquiryKind
    priority: int
    keywords: list[str]
    pattern: str | None
    active: StrictBool
    created_at: datetime
    updated_at: datetime


class RoutingRuleCreate(Schema):
    name: str = Field(min_length=2, max_length=100, examples=["social-insurance"])
    priority: int = Field(ge=0, le=100_000, description="Lower is tried first.")
    account_code: str | None = Field(default=None, description="Only this account's inquiries.")
    channel: Channel | None = None
    kind: InquiryKind | None = None
    region_prefix: RegionPrefix | None = None
    keywords: Keywords = Field(default_factory=list)
    pattern: Pattern | None = None
    department_code: str | None = Field(
        default=None, description="In scope: the department whose duties cover it."
    )
    referral_entry_code: str | None = Field(
        default=None,
        description="Out of scope: the verified referral directory entry that handles it.",
    )
    explanation: str = Field(
        min_length=4,
        max_length=500,
        description="Why, in words a citizen and an auditor understand.",
        examples=["社保缴费问题属于市人社局职责"],
    )

    _pattern = field_validator("pattern")(_valid_pattern)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.department_code is None) == (self.referral_entry_code is None):
            raise ValueError("give exactly one target: department_code or referral_entry_code")
        return self


class RoutingRuleUpdate(Schema):
    """Omitted fields stay; `pattern`, `account_code`, `channel`, `kind` and `region_prefix` can
    be cleared with null."""

    priority: int | None = Field(default=None, ge=0, le=100_000)
    account_code: str | None = None
    channel: Channel | None = None
    kind: InquiryKind | None = None
    region_prefix: RegionPrefix | None = None
    keywords: Keywords | None = None
    pattern: Pattern | None = None
    department_code: str | None = None
    referral_entry_code: str | None = None
    explanation: str | None = Field(default=None, min_length=4, max_length=500)
    active: StrictBool | None = None

    _pattern = field_validator("pattern")(_valid_pattern)

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.department_code is not None and self.referral_entry_code is not None:
            raise ValueError("give one target: department_code or referral_entry_code")
        return self


class KindRuleUpdate(Schema):
    priority: int | None = Field(default=None, ge=0, le=100_000)
    keywords: Keywords | None = None
    pattern: Pattern | None = None
    active: StrictBool | None = None

    _pattern = field_validator("pattern")(_valid_pattern)


class RoutingRuleRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "social-insurance",
                    "priority": 10,
                    "account_code": None,
                    "channel": None,
                    "kind": None,
                    "region_prefix": "3401",
                    "keywords": ["社保", "养老保险", "医保缴费"],
                    "pattern": None,
                    "department_code": "hefei-hrss",
                    "referral_entry_code": None,
                    "explanation": "社保缴费问题属于市人社局职责",
                    "active": True,
                    "usable": True,
                    "unusable_reason": None,
                    "created_at": "2026-11-24T02:00:00Z",
                    "updated_at": "2026-11-24T02:00:00Z",
                }
            ]
        }
    )

    id: int
    name: str
    priority: int
    account_code: str | None
    channel: Channel | None
    kind: InquiryKind | None
    region_prefix: str | None
    keywords: list[str]
    pattern: str | None
    department_code: str | None
    referral_entry_code: str | None
    explanation: str
    active: StrictBool
    usable: StrictBool = Field(
        description="Whether its target can take inquiries now. Routing skips a rule whose "
        "department is deactivated or whose referral entry is unverified or inactive."
    )
    unusable_reason: str | None = Field(
        description="Why routing skips it, e.g. `referral entry hefei-court is not verified`."
    )
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _target_state(cls, data: Any) -> Any:
        """Read from a rule, add whether routing can use its target now, as routing decides it."""
        if not isinstance(data, RoutingRule):
            return data
        # Imported here: the routing service imports this module.
        from app.routing.service import unusable_reason

        reason = unusable_reason(data)
        fields = {name: getattr(data, name) for name in cls.model_fields if name not in _STATE}
        return fields | {"usable": reason is None, "unusable_reason": reason}


_STATE = {"usable", "unusable_reason"}


class PreviewRequest(Schema):
    account_code: str
    channel: Channel = Channel.private_message
    text: str = Field(min_length=1, max_length=5000, examples=["我在合肥工作，社保断缴了三个月"])


class PreviewDecision(Schema):
    department_code: str = Field(description="Who handles it; for a referral, who refers it.")
    referral_entry_code: str | None = Field(description="Set when it would be referred out.")
    rule_name: str | None = Field(description="None: no rule matched, the fallback decided.")
    explanation: str


class PreviewRead(Schema):
    """What routing would decide now, and every rule that matched, in priority order."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "consultation",
                    "decision": {
                        "department_code": "hefei-hrss",
                        "referral_entry_code": None,
                        "rule_name": "social-insurance",
                        "explanation": "社保缴费问题属于市人社局职责",
                    },
                    "matched": [],
                    "skipped": [],
                }
            ]
        }
    )

    kind: InquiryKind
    decision: PreviewDecision
    matched: list[RoutingRuleRead]
    skipped: list[RoutingRuleRead] = Field(
        description="Rules that match the text but were passed over because their target cannot "
        "take inquiries now (`unusable_reason` says why), in priority order."
    )


class RuleChangeRead(Schema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "at": "2026-11-24T03:00:00Z",
                    "actor": "admin",
                    "entity": "routing_rule",
                    "entity_id": 1,
                    "action": "updated",
                    "changes": {"priority": [10, 5]},
                }
            ]
        }
    )

    at: datetime
    actor: str
    entity: str
    entity_id: int
    action: str
    changes: dict[str, Any]


class RuleAccuracy(Schema):
    rule_name: str | None = Field(description="None: the fallback to the owning department.")
    routed: int
    marked_wrong: int
    accuracy: float | None = Field(description="1 - marked_wrong / routed; None before any.")
