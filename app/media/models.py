import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Timestamped


class MediaStatus(enum.StrEnum):
    pending = "pending"  # the fetch job has yet to succeed (it retries)
    stored = "stored"  # kept in the file store: the department fetches it through the API
    failed = "failed"  # finally failed (expired on the platform, refused): shown as such


class Media(Timestamped, Base):
    """A picture, voice or video a citizen sent, fetched from the platform's media API within
    its 3-day lifetime by a durable job, and kept in the file store (MEDIA_DIR)."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(
        ForeignKey("inquiry.id", ondelete="RESTRICT"), index=True
    )
    inbox_event_id: Mapped[int] = mapped_column(
        ForeignKey("inbox_event.id", ondelete="RESTRICT"), unique=True
    )
    seq: Mapped[int] = mapped_column(Integer)  # the inquiry message it came with
    kind: Mapped[str] = mapped_column(String(16))  # image, voice, video, shortvideo
    platform_media_id: Mapped[str] = mapped_column(String(256))
    status: Mapped[MediaStatus] = mapped_column(
        Enum(MediaStatus, native_enum=False, length=8), server_default=MediaStatus.pending.value
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    # Where the file store keeps it: the SHA-256 of its bytes (a relative path, never a URL).
    storage_key: Mapped[str | None] = mapped_column(String(80))
    error_code: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, server_default="")
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
