"""Every model, imported once: the single import for Alembic and the tests."""

from app.accounts.models import Account, AccountType, Follower, Platform, account_operator
from app.answers.models import AnswerAttempt
from app.api_keys.models import ApiKey
from app.comments.models import Comment, CommentFeed
from app.db import Base
from app.deadlines.models import (
    CalendarDay,
    CalendarYear,
    DeadlineAlert,
    DeadlineExtension,
    DeadlinePause,
    DeadlineRule,
)
from app.delivery.models import Delivery, NotificationGrant, PlatformToken
from app.departments.models import Department, Level
from app.idempotency import IdempotencyRecord
from app.inquiries.models import (
    Channel,
    Inquiry,
    InquiryEvent,
    InquiryKind,
    InquiryMessage,
    InquiryNote,
    InquiryStatus,
)
from app.media.models import Media
from app.people.models import Person, Role
from app.publications.models import Publication
from app.push.models import PushRegistration
from app.ratings.models import Callback, Rating
from app.referrals.models import Referral, ReferralEntry
from app.replies.models import Reply, ReplyTemplate
from app.routing.models import KindRule, RoutingRule
from app.rule_changes import RuleChange
from app.webhooks.models import InboxEvent

__all__ = [
    "Account",
    "AccountType",
    "AnswerAttempt",
    "ApiKey",
    "Base",
    "CalendarDay",
    "CalendarYear",
    "Callback",
    "Channel",
    "Comment",
    "CommentFeed",
    "DeadlineAlert",
    "DeadlineExtension",
    "DeadlinePause",
    "DeadlineRule",
    "Delivery",
    "Department",
    "Follower",
    "IdempotencyRecord",
    "InboxEvent",
    "Inquiry",
    "InquiryEvent",
    "InquiryKind",
    "InquiryMessage",
    "InquiryNote",
    "InquiryStatus",
    "KindRule",
    "Level",
    "Media",
    "NotificationGrant",
    "Person",
    "Platform",
    "PlatformToken",
    "Publication",
    "PushRegistration",
    "Rating",
    "Referral",
    "ReferralEntry",
    "Reply",
    "ReplyTemplate",
    "Role",
    "RoutingRule",
    "RuleChange",
    "account_operator",
]
