from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AnswerAttempt(Base):
    """Failed looks at the answer page, per reference (`ref:…`, known or not, so the limit says
    nothing about which references exist) and per client address (`client:…`), in a fixed
    window; purged hourly once the window is over."""

    __tablename__ = "answer_attempt"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(Integer)
