from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamped


class Publication(Timestamped, Base):
    """One article an account published (one item of a send): what the 15-day rule and the
    1-hour repost rule are judged on, and what comments hang on. From the platform's events
    (WeChat's PUBLISHJOBFINISH, MASSSENDJOBFINISH) and the daily pull (freepublish/batchget)."""

    __tablename__ = "publication"
    __table_args__ = (UniqueConstraint("account_id", "platform_id", "item_index"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    # Where it was first learnt of: publish_event, masssend_event or freepublish_pull.
    source: Mapped[str] = mapped_column(String(24))
    # The platform's id of the send (article_id of a 发布, MsgID of a mass send) and the item.
    platform_id: Mapped[str] = mapped_column(String(128))
    item_index: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    title: Mapped[str] = mapped_column(Text, server_default="")
    url: Mapped[str] = mapped_column(Text, server_default="")
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Original or a repost: None while no source said (WeChat's events and pull do not).
    original: Mapped[bool | None] = mapped_column(Boolean)
    repost_of: Mapped[str | None] = mapped_column(Text)  # the reposted post's URL, when known
    # Comments (留言): the id comment/list takes (a mass send's msg_data_id), and the cursor.
    msg_data_id: Mapped[str | None] = mapped_column(String(64))
    comments_seen: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    comments_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
