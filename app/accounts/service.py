from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from app.accounts.models import Account, AccountType, Platform
from app.accounts.schemas import AccountCreate, AccountSecrets, AccountUpdate
from app.departments import service as departments
from app.departments.models import Department
from app.people.models import Person, Role
from app.problems import Conflict, NotFound, Problem


class AccountNotFound(NotFound):
    title = "Account not found"
    slug = "account-not-found"
    example_detail = "No account with code 'hefei-gov-wechat'."


class AccountExists(Conflict):
    title = "Account already exists"
    slug = "account-exists"
    example_detail = "An account with code 'hefei-gov-wechat' exists."


class InvalidOperators(Problem):
    status = 422
    title = "Invalid operators"
    slug = "invalid-operators"
    example_detail = "Operators must be active people of hefei-office with the operator role: 17."


class WrongPlatform(Problem):
    status = 422
    title = "Field does not fit the platform"
    slug = "wrong-platform"
    example_detail = "A Weibo account takes no WeChat identifiers or secrets: wechat_token."


_WECHAT_ONLY = frozenset(
    {
        "wechat_original_id",
        "wechat_app_id",
        "wechat_token",
        "wechat_encoding_aes_key",
        "wechat_app_secret",
        "end_key_rotation",
        "subscribe_template_id",
        "subscribe_long_term",
        "template_id",
        "subscribe_fields",
        "template_fields",
        "comments_enabled",
    }
)
_WEIBO_ONLY = frozenset(
    {"weibo_uid", "weibo_app_secret", "weibo_access_token", "weibo_window_hours"}
)


def _loaded() -> Select[Account]:
    return select(Account).options(joinedload(Account.department), selectinload(Account.operators))


async def get(session: AsyncSession, *, code: str) -> Account:
    """One account by code, with its department and operators."""
    account = await session.scalar(_loaded().where(Account.code == code))
    if account is None:
        raise AccountNotFound(f"No account with code {code!r}.")
    return account


def listing(*, department: Department | None, platform: Platform | None) -> Select[Account]:
    """Accounts by code, optionally of one department or platform."""
    statement = _loaded().order_by(Account.code)
    if department is not None:
        statement = statement.where(Account.department_id == department.id)
    if platform is not None:
        statement = statement.where(Account.platform == platform)
    return statement


async def _operators(
    session: AsyncSession, department: Department, person_ids: list[int]
) -> list[Person]:
    wanted = set(person_ids)
    people = list(
        await session.scalars(
            select(Person).where(
                Person.id.in_(wanted),
                Person.department_id == department.id,
                Person.active,
                Person.roles.contains([Role.operator.value]),
            )
        )
    )
    missing = wanted - {person.id for person in people}
    if missing:
        raise InvalidOperators(
            "Operators must be active people of the owning department "
            f"{department.code} with the operator role: {', '.join(map(str, sorted(missing)))}."
        )
    return people


def _apply_secrets(account: Account, data: AccountSecrets) -> None:
    if data.wechat_token is not None:
        account.wechat_token = data.wechat_token.get_secret_value()
    if data.wechat_encoding_aes_key is not None:
        new_key = data.wechat_encoding_aes_key.get_secret_value()
        if account.wechat_encoding_aes_key not in (None, new_key):
            # WeChat FAQ: keep the current and the previous key; try the previous one when the
            # current fails, so messages in flight during the switch are not lost.
            account.wechat_previous_encoding_aes_key = account.wechat_encoding_aes_key
        account.wechat_encoding_aes_key = new_key
    if data.wechat_app_secret is not None:
        account.wechat_app_secret = data.wechat_app_secret.get_secret_value()
    if data.weibo_app_secret is not None:
        account.weibo_app_secret = data.weibo_app_secret.get_secret_value()
    if data.weibo_access_token is not None:
        account.weibo_access_token = data.weibo_access_token.get_secret_value()


async def create(session: AsyncSession, *, data: AccountCreate) -> Account:
    """Register a government account and its secrets."""
    if await session.scalar(select(Account.id).where(Account.code == data.code)):
        raise AccountExists(f"An account with code {data.code!r} exists.")
    department = await departments.get(session, code=data.department_code)
    account = Account(
        code=data.code,
        platform=data.platform,
        account_type=data.account_type,
        verified=data.verified,
        display_name=data.display_name,
        department=department,
        level=data.level or department.level,
        wechat_original_id=data.wechat_original_id,
        wechat_app_id=data.wechat_app_id,
        weibo_uid=data.weibo_uid,
        filing_number=data.filing_number,
        filing_date=data.filing_date,
        active=True,
        operators=await _operators(session, department, data.operator_ids),
        ack_enabled=data.ack_enabled,
        weibo_window_hours=data.weibo_window_hours,
        subscribe_template_id=data.subscribe_template_id or None,
        template_id=data.template_id or None,
        comments_enabled=data.comments_enabled,
        subscribe_fields=data.subscribe_fields,
        template_fields=data.template_fields,
    )
    if data.subscribe_long_term is not None:
        account.subscribe_long_term = data.subscribe_long_term
    if data.ack_text is not None:
        account.ack_text = data.ack_text
    _apply_secrets(account, data)
    session.add(account)
    await session.flush()
    return account


async def update(session: AsyncSession, account: Account, *, data: AccountUpdate) -> None:
    """Change an account's details, operators or secrets; omitted fields stay."""
    given = {name for name in data.model_fields_set if getattr(data, name) not in (None, False)}
    foreign = given & (_WECHAT_ONLY if account.platform is Platform.weibo else _WEIBO_ONLY)
    if foreign:
        raise WrongPlatform(
            f"A {account.platform} account does not take: {', '.join(sorted(foreign))}."
        )
    if data.account_type is not None and (data.account_type is AccountType.weibo) != (
        account.platform is Platform.weibo
    ):
        raise WrongPlatform(
            f"account_type {data.account_type} does not fit a {account.platform} account."
        )
    secrets = set(AccountSecrets.model_fields)
    changes = data.model_dump(exclude_unset=True, exclude_none=True, exclude=secrets)
    if "department_code" in changes:
        account.department = await departments.get(session, code=changes.pop("department_code"))
        # Operators belong to the owning department: a new owner needs its own operators.
        changes.setdefault("operator_ids", [person.id for person in account.operators])
    if "operator_ids" in changes:
        account.operators = await _operators(
            session, account.department, changes.pop("operator_ids")
        )
    if changes.pop("end_key_rotation", False):
        account.wechat_previous_encoding_aes_key = None
    for field, value in changes.items():
        setattr(account, field, value or None if field.endswith("template_id") else value)
    if account.account_type is not AccountType.wechat_service and (
        account.subscribe_template_id or account.template_id
    ):
        raise WrongPlatform(
            "Notification templates are for WeChat service accounts only; "
            f"{account.code} is {account.account_type}."
        )
    _apply_secrets(account, data)
    await session.flush()
