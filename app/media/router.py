import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from app import problems
from app.auth import CurrentPrincipal
from app.db import SessionDep
from app.inquiries import service as inquiries
from app.media import service, store

router = APIRouter(tags=["media"], responses=problems.doc(problems.Unauthorized))


@router.get(
    "/api/v1/inquiries/{reference}/media/{media_id}",
    summary="A picture, voice or video the citizen sent",
    response_class=Response,
    responses={
        200: {"description": "The file, with the type the platform gave it."},
        **problems.doc(inquiries.InquiryNotFound, service.MediaNotFound, service.MediaUnavailable),
    },
)
async def media_file(
    reference: str, media_id: int, principal: CurrentPrincipal, session: SessionDep
) -> Response:
    """To whoever may read the inquiry. One still being fetched, or whose fetch finally failed
    (the platform keeps media 3 days), is a 409 that says which and why."""
    inquiry = await inquiries.get_readable(session, principal.department, reference=reference)
    found = await service.get(session, inquiry, media_id)
    assert found.storage_key is not None
    try:
        content = await asyncio.to_thread(store.get, found.storage_key)
    except store.Missing as exc:
        raise service.MediaUnavailable(
            f"Media {found.id} of {inquiry.reference} is not in the file store (was the store "
            "changed without copying its files?).",
            media_status=found.status.value,
        ) from exc
    return Response(
        content,
        media_type=found.content_type or "application/octet-stream",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
