"""Small builders that go through our own services, so test data obeys the same rules."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import Account
from app.accounts.schemas import AccountCreate
from app.api_keys import service as api_keys
from app.api_keys.schemas import ApiKeyCreate
from app.departments import service as departments
from app.departments.models import Department
from app.departments.schemas import DepartmentCreate
from app.inquiries import service as inquiries
from app.inquiries.models import Channel, Inquiry, InquiryStatus
from app.people import service as people
from app.people.models import Person, Role
from app.people.schemas import PersonCreate
from app.referrals import service as referrals
from app.referrals.models import ReferralChannel, ReferralEntry
from app.referrals.schemas import ReferralEntryCreate
from app.webhooks import service as intake


async def department(session: AsyncSession, code: str, **fields: Any) -> Department:
    data: dict[str, Any] = {
        "name": f"部门 {code}",
        "level": "city",
        "region_code": "340100",
        "duties": "",
    }
    data.update(fields)
    return await departments.create(session, data=DepartmentCreate(code=code, **data))


async def person(
    session: AsyncSession, department: Department, name: str = "王芳", **fields: Any
) -> Person:
    return await people.create(session, department, data=PersonCreate(name=name, **fields))


async def account(
    session: AsyncSession, owner: Department, code: str = "hefei-wechat", **fields: Any
) -> Account:
    data: dict[str, Any] = {
        "platform": "wechat",
        "account_type": "wechat_service",
        "display_name": "合肥发布",
        "department_code": owner.code,
        "wechat_original_id": "gh_10f6c3c3ac5a",
        "wechat_app_id": "wx2c2769f8efd9abc2",
        "wechat_token": "spamtest",
        "wechat_encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    }
    data.update(fields)
    return await accounts.create(session, data=AccountCreate(code=code, **data))


async def weibo_account(
    session: AsyncSession, owner: Department, *, uid: str, app_secret: str
) -> Account:
    """A Weibo account, `hefei-weibo`, with the app secret its webhook is signed with."""
    return await account(
        session,
        owner,
        code="hefei-weibo",
        platform="weibo",
        account_type="weibo",
        wechat_original_id=None,
        wechat_app_id=None,
        wechat_token=None,
        wechat_encoding_aes_key=None,
        weibo_uid=uid,
        weibo_app_secret=app_secret,
    )


# Every role but the operator's, which does nothing to inquiries: a test key may do any action.
ACTING_ROLES = tuple(role for role in Role if role is not Role.operator)


async def api_key(
    session: AsyncSession,
    department: Department,
    holder: Person | None = None,
    *,
    roles: Sequence[Role] = ACTING_ROLES,
) -> str:
    """A client system's key with `roles`, or `holder`'s key, which acts with the person's roles."""
    data = (
        ApiKeyCreate(person_id=holder.id)
        if holder
        else ApiKeyCreate(client_name="test-client", roles=list(roles))
    )
    _, key = await api_keys.issue(session, department, data=data)
    return key


async def inquiry(
    session: AsyncSession,
    account: Account,
    *,
    citizen_id: str = "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
    content: str = "社保断缴了怎么补缴？",
    received_at: datetime | None = None,
    department: Department | None = None,
    channel: Channel = Channel.private_message,
) -> Inquiry:
    """An inquiry opened the way webhooks open them, optionally already assigned."""
    now = received_at or datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    connection = (await (await session.connection()).get_raw_connection()).driver_connection
    stored = await intake.store(
        connection,
        await intake.account(connection, account.platform, account.code, seconds=5),
        intake.Delivery(
            dedupe_key=f"msg:{citizen_id}:{uuid.uuid4().hex}",
            sender_id=citizen_id,
            msg_type="text",
            event_type=None,
            sent_at=now,
            payload="<xml/>",
            content=content,
            channel=channel,
        ),
        now=now,
        open_window=timedelta(days=7),
        quiet=timedelta(seconds=20),
        seconds=5,
    )
    opened = await session.get_one(Inquiry, stored.inquiry_id)
    if department is not None:
        opened.department_id = department.id
        inquiries.transition(
            session, opened, InquiryStatus.assigned, actor="test", reason="assigned in test"
        )
    await session.flush()
    return opened


async def court(session: AsyncSession) -> ReferralEntry:
    """A verified referral entry, `hefei-court`, reached by phone at 0551-12368."""
    entry = await referrals.create_entry(
        session,
        data=ReferralEntryCreate(
            code="hefei-court",
            name="合肥市中级人民法院",
            handles="本市民商事案件的审判和执行",
            channel=ReferralChannel.phone,
            contact="0551-12368",
            basis="《中华人民共和国民事诉讼法》",
            template="您反映的事项由{name}办理（{handles}）。请通过{contact}联系办理。",
        ),
    )
    entry.verified = True
    return entry
