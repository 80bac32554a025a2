"""A demo city that shows routing working: `make demo` (idempotent; run it again at will).

Hefei (合肥市, 340100): its general office, twelve departments with their duties, one WeChat and
one Weibo account, kind rules and routing rules. The national referral numbers ship with the
migrations. Printed once: the accounts' generated secrets, to configure a test sender.
"""

import asyncio
import secrets
import string
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import Account
from app.accounts.schemas import AccountCreate
from app.departments import service as departments
from app.departments.models import Department
from app.departments.schemas import DepartmentCreate
from app.inquiries.models import InquiryKind
from app.routing import service as routing
from app.routing.models import KindRule, RoutingRule
from app.routing.schemas import KindRuleCreate, RoutingRuleCreate

CITY = "340100"
OFFICE = "hefei-office"

DEPARTMENTS = [  # code, name, duties
    (OFFICE, "合肥市人民政府办公室", "市政府日常工作的综合协调，政务新媒体的统筹管理与督办"),
    (
        "hefei-hrss",
        "合肥市人力资源和社会保障局",
        "社会保险参保缴费，就业服务，劳动保障监察（拖欠工资）",
    ),
    ("hefei-housing-fund", "合肥住房公积金管理中心", "住房公积金的缴存、提取和贷款"),
    ("hefei-urban", "合肥市城市管理局", "市容环境，建筑施工夜间噪声等城市管理综合执法"),
    ("hefei-transport", "合肥市交通运输局", "公共交通线路与班次，道路运输管理"),
    ("hefei-emergency", "合肥市应急管理局", "安全生产，火灾等突发事件的应急管理与救援协调"),
    ("hefei-market", "合肥市市场监督管理局", "食品安全，市场秩序，消费者权益保护"),
    ("hefei-public-security", "合肥市公安局", "治安管理，户籍与出入境，交通管理"),
    ("hefei-ecology", "合肥市生态环境局", "大气、水、工业噪声污染的监管"),
    ("hefei-housing", "合肥市住房和城乡建设局", "房屋建设与物业管理，建筑市场监管"),
    ("hefei-education", "合肥市教育局", "学校招生与入学，教育管理"),
    ("hefei-health", "合肥市卫生健康委员会", "医疗机构管理，公共卫生"),
    ("hefei-civil-affairs", "合肥市民政局", "社会救助，养老服务，婚姻登记"),
]

KIND_RULES = [  # priority, kind, keywords, pattern
    (10, InquiryKind.report, ["举报"], None),
    (20, InquiryKind.complaint, ["投诉", "拖欠", "吵得", "扰民", "不给退", "不执行"], None),
    (30, InquiryKind.suggestion, ["建议", "希望增加", "能否增加"], None),
    (40, InquiryKind.help, ["求助", "帮帮", "救命", "着火"], None),
    (50, InquiryKind.consultation, [], "怎么|如何|什么|哪里|能否|可以.{0,6}吗|吗[？?]?$"),
]

# priority, name, target (a department or a referral entry), explanation, keywords, pattern
ROUTING_RULES = [
    (
        10,
        "court-enforcement",
        ("entry", "court-12368"),
        "生效判决的执行属于人民法院职责",
        [],
        "(判决|裁定|调解书).{0,30}(不执行|不履行|拒不)|申请强制执行",
    ),
    (
        20,
        "consumer-disputes",
        ("entry", "consumer-12315"),
        "消费纠纷由市场监管部门12315受理",
        ["网购", "不给退", "退货", "商家"],
        None,
    ),
    (
        30,
        "unpaid-wages",
        ("department", "hefei-hrss"),
        "拖欠工资属于市人社局劳动保障监察职责",
        ["拖欠工资", "欠薪", "不发工资"],
        None,
    ),
    (
        40,
        "social-insurance",
        ("department", "hefei-hrss"),
        "社保缴费问题属于市人社局职责",
        ["社保", "养老保险", "失业保险", "医保缴费"],
        None,
    ),
    (
        50,
        "housing-fund",
        ("department", "hefei-housing-fund"),
        "住房公积金业务属于市公积金管理中心职责",
        ["公积金"],
        None,
    ),
    (
        60,
        "construction-noise",
        ("department", "hefei-urban"),
        "建筑施工夜间噪声属于市城管局执法职责",
        [],
        "(工地|施工).{0,20}(晚上|夜间|半夜|凌晨|吵|噪)",
    ),
    (
        70,
        "public-transport",
        ("department", "hefei-transport"),
        "公交地铁线路班次属于市交通运输局职责",
        ["地铁", "公交", "班次"],
        None,
    ),
    (
        80,
        "fire",
        ("department", "hefei-emergency"),
        "火灾等突发事件属于市应急管理局职责",
        ["着火", "火灾", "冒烟", "冒大烟"],
        None,
    ),
    (
        90,
        "food-safety",
        ("department", "hefei-market"),
        "食品安全属于市市场监管局职责",
        ["过期食材", "过期食品", "食品安全"],
        None,
    ),
]


def _random(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


async def seed(
    session: AsyncSession,
    *,
    wechat_token: str,
    wechat_aes_key: str,
    wechat_app_id: str,
    weibo_secret: str,
) -> dict[str, bool]:
    """Create what is missing; leave what exists. Returns what was created, by part."""
    created = {"departments": False, "hefei-wechat": False, "hefei-weibo": False, "rules": False}
    existing = set(await session.scalars(select(Department.code)))
    for code, name, duties in DEPARTMENTS:
        if code not in existing:
            created["departments"] = True
            await departments.create(
                session,
                data=DepartmentCreate(
                    code=code,
                    name=name,
                    level="city",
                    region_code=CITY,
                    duties=duties,
                    is_supervising_office=code == OFFICE,
                    parent_code=None if code == OFFICE else OFFICE,
                ),
            )
    accounts_there = set(await session.scalars(select(Account.code)))
    for data in (
        AccountCreate(
            code="hefei-wechat",
            platform="wechat",
            account_type="wechat_service",
            verified=True,
            display_name="合肥发布",
            department_code=OFFICE,
            wechat_original_id="gh_0000hefei01",
            wechat_app_id=wechat_app_id,
            wechat_token=wechat_token,
            wechat_encoding_aes_key=wechat_aes_key,
            ack_enabled=True,
        ),
        AccountCreate(
            code="hefei-weibo",
            platform="weibo",
            account_type="weibo",
            verified=True,
            display_name="合肥发布",
            department_code=OFFICE,
            weibo_uid="1000000001",
            weibo_app_secret=weibo_secret,
        ),
    ):
        if data.code not in accounts_there:
            created[data.code] = True
            await accounts.create(session, data=data)
    if not await session.scalar(select(KindRule.id).limit(1)):
        for priority, kind, keywords, pattern in KIND_RULES:
            await routing.create_kind_rule(
                session,
                data=KindRuleCreate(
                    kind=kind, priority=priority, keywords=keywords, pattern=pattern
                ),
            )
    rules_there = set(await session.scalars(select(RoutingRule.name)))
    for priority, name, (target, code), explanation, keywords, pattern in ROUTING_RULES:
        if name not in rules_there:
            created["rules"] = True
            await routing.create_rule(
                session,
                data=RoutingRuleCreate(
                    name=name,
                    priority=priority,
                    region_prefix="3401",
                    keywords=keywords,
                    pattern=pattern,
                    department_code=code if target == "department" else None,
                    referral_entry_code=code if target == "entry" else None,
                    explanation=explanation,
                ),
            )
    return created


def _secrets(created: dict[str, bool], *, token: str, aes_key: str, app_id: str, weibo: str) -> str:
    """The secrets of the accounts this run created, and only those: an account that existed
    keeps the secrets it was made with, and printing fresh ones would mislead."""
    lines = []
    if created["hefei-wechat"]:
        lines.append(f"  hefei-wechat: token {token}, EncodingAESKey {aes_key}, AppID {app_id}")
    if created["hefei-weibo"]:
        lines.append(f"  hefei-weibo: app secret {weibo}")
    if not lines:
        return "demo accounts existed already: their secrets were shown when they were created"
    return "demo account secrets (shown once; set them on your test sender):\n" + "\n".join(lines)


async def _main() -> None:
    from app.db import sessionmaker

    token, aes_key, app_id, weibo = _random(32), _random(43), "wx" + _random(16), _random(32)
    async with sessionmaker().begin() as session:
        created = await seed(
            session,
            wechat_token=token,
            wechat_aes_key=aes_key,
            wechat_app_id=app_id,
            weibo_secret=weibo,
        )
    made = [part for part, new in created.items() if new] or ["nothing (all there already)"]
    print(f"demo city {CITY}: created {', '.join(made)}", file=sys.stderr)
    print(
        _secrets(created, token=token, aes_key=aes_key, app_id=app_id, weibo=weibo), file=sys.stderr
    )
    await sessionmaker().kw["bind"].dispose()


if __name__ == "__main__":
    from app.serve import prepare_database

    prepare_database()
    asyncio.run(_main())
