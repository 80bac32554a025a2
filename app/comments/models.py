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
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id", ondelete="RESTRICT"))
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), unique=True
    )
    platform_comment_id: Mapped[str] = mapped_column(String(64))  # user_comment_id
    commented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
