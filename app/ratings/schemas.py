from datetime import datetime

from pydantic import Field, StrictBool

from app.schemas import Schema


class RatingView(Schema):
    solved: bool | None = Field(description="已解决 (true) / 未解决 (false); null: not said.")
    satisfaction: int = Field(description="1 非常满意, 2 满意, 3 基本满意, 4 不满意, 5 非常不满意.")
    rated_at: datetime


class CallbackView(Schema):
    """A call-back (回访) owed after a bad rating."""

    id: int
    status: str = Field(description="open or done.")
    due_at: datetime
    reached: bool | None
    outcome: str
    done_at: datetime | None
    done_by: str | None


class CallbackItem(Schema):
    """A call-back in the department's list: what it is about and when it is due."""

    id: int
    reference: str = Field(description="The inquiry whose answer was rated badly.")
    status: str
    due_at: datetime
    overdue: StrictBool = Field(description="Open past its due time.")
    solved: bool | None
    satisfaction: int
    rated_at: datetime
    done_at: datetime | None


class CallbackOutcome(Schema):
    reached: StrictBool = Field(
        description="The citizen was reached. Then they are asked to rate again."
    )
    outcome: str = Field(
        min_length=2, max_length=2000, examples=["已电话回访，市民表示已补缴成功。"]
    )
