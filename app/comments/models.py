from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Comment(Base):
    """A comment (留言) on one of an account's articles, made an inquiry of its own (channel
    `comment`, never threaded); what the public reply goes back to."""

    __tablename__ = "comment"
    __table_args__ = (UniqueConstraint("publication_id", "platform_comment_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # WeChat: the recorded article; Weibo: the post's id (its posts are not recorded yet).
    publication_id: Mapped[int | None] = mapped_column(
        ForeignKey("publication.id", ondelete="RESTRICT")
    )
    platform_post_id: Mapped[str | None] = mapped_column(String(64))
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), unique=True
    )
    platform_comment_id: Mapped[str] = mapped_column(String(64))  # user_comment_id
    commented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CommentFeed(Base):
    """How far a Weibo account's comment feed was read (`to_me`: comments on its posts;
    `mentions`: comments that @mention it): Weibo's ids grow, so a since_id each."""

    __tablename__ = "comment_feed"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    feed: Mapped[str] = mapped_column(String(16), primary_key=True)
    since_id: Mapped[int] = mapped_column(BigInteger, server_default="0")
