import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, Timestamped
from app.departments.models import Level

if TYPE_CHECKING:
    from app.departments.models import Department
    from app.people.models import Person


class Platform(enum.StrEnum):
    wechat = "wechat"
    weibo = "weibo"


class AccountType(enum.StrEnum):
    """What the platform lets the account do; permissions and repost deadlines depend on it."""

    wechat_subscription = "wechat_subscription"  # 订阅号
    wechat_service = "wechat_service"  # 服务号
    weibo = "weibo"


DEFAULT_ACK_TEXT = "您的留言已收到，编号{reference}。我们将在规定时限内答复，请留意本公众号消息。"

account_operator = Table(
    "account_operator",
    Base.metadata,
    Column("account_id", ForeignKey("account.id", ondelete="CASCADE"), primary_key=True),
    Column("person_id", ForeignKey("person.id", ondelete="RESTRICT"), primary_key=True),
)


class Account(Timestamped, Base):
    """A government WeChat or Weibo account, filed (备案) and owned by a department."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)  # the webhook URL segment
    platform: Mapped[Platform] = mapped_column(Enum(Platform, native_enum=False, length=16))
    account_type: Mapped[AccountType] = mapped_column(
        Enum(AccountType, native_enum=False, length=32)
    )
    verified: Mapped[bool] = mapped_column(Boolean, default=False)  # 认证
    display_name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    level: Mapped[Level] = mapped_column(Enum(Level, native_enum=False, length=16))
    wechat_original_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # gh_…
    wechat_app_id: Mapped[str | None] = mapped_column(String(64))
    weibo_uid: Mapped[str | None] = mapped_column(String(32), unique=True)
    filing_number: Mapped[str | None] = mapped_column(String(100))  # 备案编号
    filing_date: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Passive acknowledgement for the message that opens an inquiry; {reference} is filled in.
    ack_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    ack_text: Mapped[str] = mapped_column(Text, server_default=DEFAULT_ACK_TEXT)

    # Platform secrets: written through the admin API, never read back, never logged.
    wechat_token: Mapped[str | None] = mapped_column(String(64))
    wechat_encoding_aes_key: Mapped[str | None] = mapped_column(String(43))
    wechat_previous_encoding_aes_key: Mapped[str | None] = mapped_column(String(43))
    wechat_app_secret: Mapped[str | None] = mapped_column(String(128))
    weibo_app_secret: Mapped[str | None] = mapped_column(String(128))
    # The fan-service access token (粉丝服务平台 → 开发者模式), for replies.
    weibo_access_token: Mapped[str | None] = mapped_column(String(256))
    # Weibo's reply window for this account, where it differs from WEIBO_WINDOW_HOURS (sources
    # say 48 h, older pages 72 h).
    weibo_window_hours: Mapped[float | None] = mapped_column(Float)
    # Where the window has closed (protocol brief §8): a subscription notification (订阅通知,
    # service accounts; long-term for government accounts, else one message per grant) or a
    # template message (verified service accounts), each with its template set by the admin.
    # Each template's own keywords (`subscribe_fields`, `template_fields`) map to texts with
    # {reference}, {status} and {date}; the link is the answer page.
    subscribe_template_id: Mapped[str | None] = mapped_column(String(128))
    subscribe_long_term: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    subscribe_fields: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    template_id: Mapped[str | None] = mapped_column(String(128))
    template_fields: Mapped[dict[str, str] | None] = mapped_column(JSONB)
    # The daily pull of publications: when it last ran for the account, and why its
    # publications are unknown (no source works), if they are.
    # 留言管理 is on for the account: its articles' comments are polled.
    comments_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    publications_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publications_error: Mapped[str | None] = mapped_column(Text)

    department: Mapped["Department"] = relationship(lazy="raise")
    operators: Mapped[list["Person"]] = relationship(
        secondary=account_operator, lazy="raise", order_by="Person.id"
    )

    @property
    def department_code(self) -> str:
        return self.department.code

    @property
    def operator_ids(self) -> list[int]:
        return [person.id for person in self.operators]

    @property
    def operators_required(self) -> int:
        """Anhui notice: provincial-department and municipal accounts 2 operators, county 1."""
        return 1 if self.level is Level.county else 2

    @property
    def staffing_ok(self) -> bool:
        return sum(person.active for person in self.operators) >= self.operators_required

    @property
    def publications_known(self) -> bool:
        """Unknown is not zero: False until a source worked for the account, or when none does."""
        return self.publications_checked_at is not None and self.publications_error is None

    @property
    def may_use(self) -> list[str]:
        """What the platform lets this account send (protocol brief §8.1), as configured."""
        if self.platform is Platform.weibo:
            return ["customer_service_message"]
        service = self.account_type is AccountType.wechat_service
        return [
            name
            for name, allowed in (
                ("customer_service_message", self.verified),
                ("subscribe_notification", service and bool(self.subscribe_template_id)),
                ("template_message", service and self.verified and bool(self.template_id)),
            )
            if allowed
        ]

    @property
    def has_wechat_token(self) -> bool:
        return self.wechat_token is not None

    @property
    def has_wechat_encoding_aes_key(self) -> bool:
        return self.wechat_encoding_aes_key is not None

    @property
    def key_rotation_in_progress(self) -> bool:
        return self.wechat_previous_encoding_aes_key is not None

    @property
    def has_wechat_app_secret(self) -> bool:
        return self.wechat_app_secret is not None

    @property
    def has_weibo_app_secret(self) -> bool:
        return self.weibo_app_secret is not None

    @property
    def has_weibo_access_token(self) -> bool:
        return self.weibo_access_token is not None


class Follower(Base):
    """A citizen's standing with an account: following or not, and when they last wrote.

    The platforms only let an account message a citizen for a while after the citizen's last
    message or follow (WeChat: 48 hours), so later replies depend on these times.
    """

    __tablename__ = "follower"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    citizen_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    subscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def subscribed(self) -> bool | None:
        """Following now, judged by the latest (un)subscribe event; None if none was seen."""
        if self.subscribed_at is None and self.unsubscribed_at is None:
            return None
        if self.unsubscribed_at is None:
            return True
        return self.subscribed_at is not None and self.subscribed_at > self.unsubscribed_at
