"""The current time as a dependency, so tests pass explicit instants (STYLE rule 9)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends


async def utcnow() -> datetime:
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(utcnow)]
