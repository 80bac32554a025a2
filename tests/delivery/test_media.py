"""Media citizens send (issue 16): fetched through WeChat's media API (the fake, over real
HTTP) by a durable job, kept in the file store, served to who may read the inquiry; a fetch
that finally failed is shown as such."""

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import Account
from app.deadlines.calendar import CHINA
from app.departments.models import Department
from app.inquiries.models import InquiryMessage
from app.media import tasks as media_tasks
from app.media.models import Media, MediaStatus
from app.settings import settings
from tests import factories
from tests.conftest import Clock, make_client
from tests.delivery.conftest import OPENID
from tests.delivery.test_outbox import WEBHOOK, _weibo_fan_wrote
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.weibo_api import FakeWeibo
from tests.inquiries.test_work import auth
from tests.webhooks.peers import WeChat, Weibo, message_xml, weibo_text

pytestmark = pytest.mark.committing
P = "/api/v1/inquiries"
City = tuple[httpx.AsyncClient, dict[str, str], str]
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(range(256)) * 4


@pytest.fixture(autouse=True)
def _here(
    committing_maker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(media_tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(settings(), "media_dir", tmp_path / "media")


async def _sends_picture(client: httpx.AsyncClient, clock: Clock, media_id: str) -> None:
    clock.now += timedelta(seconds=1)
    picture = message_xml(
        "image",
        sender=OPENID,
        create_time=int(clock.now.timestamp()),
        PicUrl="http://mmbiz.qpic.cn/mmbiz_jpg/x/0",
        MediaId=media_id,
    )
    answer = await WeChat(WEBHOOK, clock).post(client, picture)
    assert answer.status_code == 200, answer.text


async def _media(maker: async_sessionmaker[AsyncSession]) -> list[Media]:
    async with maker() as session:
        return list(await session.scalars(select(Media).order_by(Media.id)))


async def test_a_picture_is_fetched_kept_and_served_to_who_may_read_it(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, key, reference = city
    fake.media_files["MEDIA_1"] = (JPEG, "image/jpeg")
    await _sends_picture(client, clock, "MEDIA_1")
    [pending] = await _media(committing_maker)
    assert (pending.status, pending.kind, pending.seq) == (MediaStatus.pending, "image", 2)
    await media_tasks.fetch(pending.id)
    await media_tasks.fetch(pending.id)  # a retry of a stored one fetches nothing
    assert fake.media_requests == 1
    [stored] = await _media(committing_maker)
    assert (stored.status, stored.content_type, stored.size) == (
        MediaStatus.stored,
        "image/jpeg",
        len(JPEG),
    )
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    [shown] = view["media"]
    assert shown["href"] == f"{P}/{reference}/media/{stored.id}"
    served = await client.get(shown["href"], headers=key)
    assert served.status_code == 200
    assert (served.content, served.headers["content-type"]) == (JPEG, "image/jpeg")
    # Another department reads nothing of it (the isolation walk covers every role).
    async with committing_maker.begin() as session:
        urban = await session.scalar(select(Department).where(Department.code == "hefei-urban"))
        assert urban is not None
        other = auth(await factories.api_key(session, urban))
    assert (await client.get(shown["href"], headers=other)).status_code == 404


async def test_a_fetch_that_failed_is_shown_as_failed_never_a_broken_link(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, key, reference = city
    await _sends_picture(client, clock, "MEDIA_EXPIRED")  # the platform no longer has it
    [row] = await _media(committing_maker)
    await media_tasks.fetch(row.id)
    [failed] = await _media(committing_maker)
    assert (failed.status, failed.error_code) == (MediaStatus.failed, "40007")
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    [shown] = view["media"]
    assert (shown["status"], shown["href"], shown["error_code"]) == ("failed", None, "40007")
    refused = await client.get(f"{P}/{reference}/media/{failed.id}", headers=key)
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/media-unavailable"
    assert "send it again" in refused.json()["detail"]
    # Past the platform's 3 days the job does not even ask: failed, expired.
    fake.media_files["MEDIA_LATE"] = (JPEG, "image/jpeg")
    await _sends_picture(client, clock, "MEDIA_LATE")
    late = (await _media(committing_maker))[-1]
    async with committing_maker.begin() as session:
        row = await session.get_one(Media, late.id)
        row.created_at = datetime.now(UTC) - timedelta(days=3, minutes=1)
    asked = fake.media_requests
    await media_tasks.fetch(late.id)
    assert fake.media_requests == asked
    expired = (await _media(committing_maker))[-1]
    assert (expired.status, expired.error_code) == (MediaStatus.failed, "expired")


async def test_a_pending_picture_whose_job_is_gone_gets_a_new_one(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """Nothing waits for ever unseen: a fetch job that failed for good (or that a worker of an
    older release did not know) is queued again while the platform still keeps the file."""
    client, _, _ = city
    fake.media_files["MEDIA_2"] = (JPEG, "image/jpeg")
    await _sends_picture(client, clock, "MEDIA_2")
    [row] = await _media(committing_maker)

    async def jobs() -> list[str]:
        async with committing_maker() as session:
            found = await session.scalars(
                text("SELECT status FROM procrastinate_jobs WHERE task_name = 'fetch_media'")
            )
            return sorted(found)

    assert await jobs() == ["todo"]  # intake queued it
    now = datetime.now(UTC)
    async with committing_maker.begin() as session:
        await session.execute(text("UPDATE procrastinate_jobs SET status = 'failed'"))
        pending = await session.get_one(Media, row.id)
        pending.updated_at = now - timedelta(minutes=11)
    await media_tasks.recover_media(int(now.timestamp()))
    assert await jobs() == ["failed", "todo"]
    await media_tasks.recover_media(int(now.timestamp()) + 600)
    assert await jobs() == ["failed", "todo"]  # it has one now
    await media_tasks.fetch(row.id)
    [stored] = await _media(committing_maker)
    assert stored.status is MediaStatus.stored


async def test_a_weibo_fans_picture_and_voice_are_fetched_through_mss_msget(
    fake_weibo: FakeWeibo, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """A Weibo push names the file by `tovfid` (the account's copy); the job downloads it with
    the fan-service token, and the department reads it like a WeChat picture. A fid Weibo no
    longer has is failed with Weibo's word, never a broken link."""
    clock.now = datetime.now(UTC).replace(microsecond=0)
    account, inquiry, key = await _weibo_fan_wrote(committing_maker, fake_weibo, clock.now)
    fake_weibo.media_files["821804469"] = (JPEG, "image/jpeg")
    peer = Weibo(f"/webhooks/weibo/{account.code}", clock, secret="w" * 32)
    async with make_client(committing_maker, clock) as client:
        for kind, data in (
            ("image", {"vfid": 821804459, "tovfid": 821804469}),
            ("voice", {"vfid": 821804471, "tovfid": "821804472"}),  # gone from Weibo
            ("image", {"vfid": 821804473, "tovfid": None}),  # the sender's copy, then
            ("image", {"tovfid": "not-a-fid"}),  # kept as a message, without a file
        ):
            clock.now += timedelta(seconds=1)
            created = clock.now.astimezone(CHINA).strftime("%a %b %d %H:%M:%S %z %Y")
            push = weibo_text("", kind=kind, data=data, sender="1902538057", created_at=created)
            answer = await peer.post(client, push | {"receiver_id": int(account.weibo_uid or 0)})
            assert answer.status_code == 200, answer.text
        picture, voice, sender_copy = await _media(committing_maker)
        assert (picture.kind, picture.platform_media_id, picture.seq) == ("image", "821804469", 2)
        assert (voice.kind, voice.platform_media_id) == ("voice", "821804472")
        assert sender_copy.platform_media_id == "821804473"
        async with committing_maker() as session:
            messages = await session.scalar(
                select(func.count())
                .select_from(InquiryMessage)
                .where(InquiryMessage.inquiry_id == inquiry.id)
            )
        assert messages == 5  # the first message and four pushes: none lost
        for row in (picture, voice):
            await media_tasks.fetch(row.id)
        stored, failed, _ = await _media(committing_maker)
        assert (stored.status, stored.content_type) == (MediaStatus.stored, "image/jpeg")
        assert (failed.status, failed.error_code) == (MediaStatus.failed, "20101")
        assert fake_weibo.media_requests == 2
        view = (await client.get(f"{P}/{inquiry.reference}", headers=key)).json()
        shown = {m["kind"]: m for m in view["media"] if m["id"] != sender_copy.id}
        served = await client.get(shown["image"]["href"], headers=key)
        assert (served.status_code, served.content) == (200, JPEG)
        assert (shown["voice"]["status"], shown["voice"]["href"]) == ("failed", None)
        # A token Weibo refuses (the admin must set a new one): pending, saying why, never
        # failed for good; with the new token the next run fetches it.
        fake_weibo.media_files["821804473"] = (JPEG, "image/jpeg")
        fake_weibo.token = "a-new-token"
        with pytest.raises(media_tasks.TryAgain):
            await media_tasks.fetch(sender_copy.id)
        waiting = (await _media(committing_maker))[-1]
        assert (waiting.status, waiting.error_code) == (MediaStatus.pending, "21332")
        async with committing_maker.begin() as session:
            (await session.get_one(Account, account.id)).weibo_access_token = "a-new-token"
        await media_tasks.fetch(sender_copy.id)
        assert (await _media(committing_maker))[-1].status is MediaStatus.stored


async def test_the_file_stores_failures_are_its_own_and_a_missing_file_is_said(
    fake: FakeWeChat,
    city: City,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A store that cannot write keeps the row pending with the store's word (tried again), and
    fails it as the store's fault on the last attempt, never as the platform's; a stored file
    gone from the store is a 409 that says so, never a 500."""
    client, key, reference = city
    fake.media_files["MEDIA_1"] = (JPEG, "image/jpeg")
    fake.media_files["MEDIA_2"] = (JPEG + b"2", "image/jpeg")
    await _sends_picture(client, clock, "MEDIA_1")
    await _sends_picture(client, clock, "MEDIA_2")
    first, second = await _media(committing_maker)
    blocked = tmp_path / "not-a-folder"
    await asyncio.to_thread(blocked.write_bytes, b"")
    monkeypatch.setattr(settings(), "media_dir", blocked)
    with pytest.raises(media_tasks.TryAgain):
        await media_tasks.fetch(first.id)
    [row, _] = await _media(committing_maker)
    assert (row.status, row.error_code) == (MediaStatus.pending, "store")
    await media_tasks.fetch(second.id, last_attempt=True)
    [_, row] = await _media(committing_maker)
    assert (row.status, row.error_code) == (MediaStatus.failed, "store")
    monkeypatch.setattr(settings(), "media_dir", tmp_path / "media")
    await media_tasks.fetch(first.id)
    [stored, _] = await _media(committing_maker)
    assert stored.status is MediaStatus.stored
    assert stored.storage_key is not None
    moved = tmp_path / "media" / stored.storage_key[:2] / stored.storage_key
    await asyncio.to_thread(moved.unlink)
    missing = await client.get(f"{P}/{reference}/media/{stored.id}", headers=key)
    assert missing.status_code == 409
    assert "not in the file store" in missing.json()["detail"]


@pytest.fixture
def object_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 server on loopback (moto's, a real HTTP peer) with an empty bucket, and the service
    pointed at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "govinbox-test"),
        ("AWS_SECRET_ACCESS_KEY", "govinbox-test-secret"),
        ("AWS_DEFAULT_REGION", "cn-north-1"),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(settings(), "media_s3_bucket", "govinbox-media")
    monkeypatch.setattr(settings(), "media_s3_endpoint_url", endpoint)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(
        Bucket="govinbox-media", CreateBucketConfiguration={"LocationConstraint": "cn-north-1"}
    )
    try:
        yield client
    finally:
        server.stop()


async def test_with_an_object_store_media_are_kept_in_the_bucket(
    fake: FakeWeChat,
    city: City,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    object_store: Any,
) -> None:
    """Scaled out, the instances share an S3-compatible bucket: the fetch puts the file there
    (once, however often the same bytes come), the API serves it from there, and the folder
    stays empty."""
    client, key, reference = city
    fake.media_files["MEDIA_1"] = (JPEG, "image/jpeg")
    fake.media_files["MEDIA_2"] = (JPEG, "image/jpeg")  # the same picture sent twice
    await _sends_picture(client, clock, "MEDIA_1")
    await _sends_picture(client, clock, "MEDIA_2")
    for row in await _media(committing_maker):
        await media_tasks.fetch(row.id)
    first, second = await _media(committing_maker)
    assert first.status is second.status is MediaStatus.stored
    assert first.storage_key == second.storage_key == hashlib.sha256(JPEG).hexdigest()
    listed = object_store.list_objects_v2(Bucket="govinbox-media")["Contents"]
    assert [o["Key"] for o in listed] == [f"media/{first.storage_key[:2]}/{first.storage_key}"]
    assert not await asyncio.to_thread(Path(settings().media_dir).exists)
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    for shown in view["media"]:
        served = await client.get(shown["href"], headers=key)
        assert (served.status_code, served.content) == (200, JPEG)


async def test_a_video_is_fetched_from_the_address_wechat_gives_and_too_large_is_failed(
    fake: FakeWeChat,
    city: City,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """media/get answers a video with its address (`video_url`): the job follows it. A file
    over MEDIA_MAX_BYTES is failed at once, saying so: retrying would fetch it again for
    nothing."""
    client, key, reference = city
    small, large = b"\x00\x00\x00\x18ftypmp42" + bytes(1000), bytes(4096)
    fake.videos.update({"VIDEO_1": small, "VIDEO_2": large})
    monkeypatch.setattr(settings(), "media_max_bytes", 2048)
    for media_id in ("VIDEO_1", "VIDEO_2"):
        clock.now += timedelta(seconds=1)
        video = message_xml(
            "video",
            sender=OPENID,
            create_time=int(clock.now.timestamp()),
            MediaId=media_id,
            ThumbMediaId="THUMB_1",
        )
        assert (await WeChat(WEBHOOK, clock).post(client, video)).status_code == 200
    for row in await _media(committing_maker):
        await media_tasks.fetch(row.id)
    kept, refused = await _media(committing_maker)
    assert (kept.kind, kept.status, kept.content_type, kept.size) == (
        "video",
        MediaStatus.stored,
        "video/mp4",
        len(small),
    )
    assert (refused.status, refused.error) == (
        MediaStatus.failed,
        "larger than MEDIA_MAX_BYTES (2048)",
    )
    served = await client.get(f"{P}/{reference}/media/{kept.id}", headers=key)
    assert (served.status_code, served.content) == (200, small)
