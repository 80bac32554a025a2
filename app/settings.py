"""Configuration, environment first. Every setting is documented in the README table."""

import sys
from functools import cache
from pathlib import Path
from typing import Literal, NoReturn

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Values people paste from examples; a bootstrap admin token must never be one of them.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "changethis", "secret", "admin", "token", "password"}
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (postgresql+psycopg://…). Unset: embedded PostgreSQL.",
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description="Connections each process keeps (as many again may burst).",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bootstrap admin bearer token for /api/v1/admin/."
    )
    allow_embedded_database: bool = Field(
        default=True,
        description="Start the embedded PostgreSQL when DATABASE_URL is unset (development). "
        "The container image sets it false.",
    )
    host: str = Field(default="127.0.0.1", description="Address `make run` binds to.")
    port: int = Field(default=8000, description="Port `make run` binds to.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    webhook_max_body_bytes: int = Field(
        default=65_536, ge=1024, description="Largest webhook body accepted; larger is a 413."
    )
    webhook_timestamp_tolerance_seconds: int = Field(
        default=300,
        ge=10,
        description="A webhook whose signed timestamp is further from now than this is a 403.",
    )
    webhook_deadline_seconds: float = Field(
        default=4.0,
        gt=0,
        le=30,
        description="Every webhook is answered within this many seconds of arrival (the "
        "platforms give up at 5): body, connection, locks and intake included; else 503.",
    )
    webhook_body_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="A webhook body not fully received within this is answered 408, before any "
        "database connection is taken.",
    )
    webhook_sent_at_window_days: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="A Weibo message whose created_at is further from now than this is a 400.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        description="`python -m app.worker` serves Prometheus metrics on this port when set.",
    )
    conversation_window_days: int = Field(
        default=7,
        ge=1,
        description="A private message joins the citizen's open inquiry if its last message is "
        "younger than this; otherwise it opens a new, linked inquiry.",
    )
    urgent_keywords: list[str] = Field(
        default=[
            "着火",
            "失火",
            "火灾",
            "起火",
            "冒烟",
            "冒大烟",
            "爆炸",
            "车祸",
            "撞车",
            "交通事故",
            "受伤",
            "流血",
            "昏迷",
            "晕倒",
            "溺水",
            "救命",
            "抢劫",
            "杀人",
            "持刀",
            "绑架",
            "煤气泄漏",
            "燃气泄漏",
            "触电",
            "坍塌",
            "被困",
        ],
        description="Life-and-safety words that flag an inquiry urgent (JSON list in the env).",
    )
    office_hours: tuple[str, str] = Field(
        default=("08:30", "17:30"),
        description="Beijing time on working days; deadline warnings fire only then (except "
        "hours rules, which warn around the clock).",
    )
    warning_fractions: list[float] = Field(
        default=[0.5, 0.8], description="Shares of the working time at which a warning fires."
    )
    routing_quiet_seconds: float = Field(
        default=20,
        ge=0,
        le=3600,
        description="Routing waits this long after a citizen's latest fragment (citizens write "
        "in bursts); a later fragment moves it back.",
    )
    pause_max_count: int = Field(
        default=2,
        ge=0,
        description="Pauses per inquiry at most; together they credit no more than the rule's "
        "own length.",
    )
    sign_for_within_office_hours: float = Field(
        default=4.5,
        gt=0,
        description="An inquiry not signed for (签收) within this much office time of reaching "
        "its holder (a working half-day of OFFICE_HOURS) joins the office's queues.",
    )
    idempotency_keep_hours: float = Field(
        default=24, gt=0, description="How long an Idempotency-Key's answer is kept for retries."
    )
    reply_length_limits: dict[str, int] = Field(
        default={
            "wechat.private_message": 600,
            "wechat.comment": 600,
            "weibo.private_message": 300,
            "weibo.comment": 140,
        },
        description="Most characters one message may carry, per `platform.channel` (JSON in the "
        "env); a longer reply is refused with the limit, never split.",
    )
    sensitive_words: list[str] = Field(
        default=[],
        description="Words a reply must not contain (JSON list in the env); matched ignoring case.",
    )
    merge_candidates_max: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="Merge candidates compare at most this many recent inquiries.",
    )
    merge_similarity_min: float = Field(
        default=60,
        ge=0,
        le=100,
        description="Text similarity (rapidfuzz, 0–100) from which an open inquiry of the same "
        "department is a merge candidate.",
    )
    merge_same_citizen_days: int = Field(
        default=30, ge=1, description="Inquiries of the same citizen this recent are candidates."
    )
    wechat_api_base: str = Field(
        default="https://api.weixin.qq.com",
        description="WeChat's API base URL (tests point it at a local fake).",
    )
    weibo_api_base: str = Field(
        default="https://c.api.weibo.com",
        description="Weibo's API base URL for fan-service replies (tests point it at a fake).",
    )
    weibo_open_api_base: str = Field(
        default="https://api.weibo.com",
        description="Weibo's open API base URL, for the account's timeline (publications).",
    )
    weibo_upload_api_base: str = Field(
        default="https://upload.api.weibo.com",
        description="Weibo's upload API base URL, for the media fans send (mss/msget).",
    )
    wechat_window_hours: float = Field(
        default=48,
        gt=0,
        description="WeChat's customer-service window after a citizen's message (it has changed "
        "before: a setting).",
    )
    wechat_window_messages: int = Field(
        default=5, ge=1, description="Messages WeChat allows within one window."
    )
    weibo_window_hours: float = Field(
        default=48, gt=0, description="Weibo's window after a citizen's message (sources differ)."
    )
    weibo_window_messages: int = Field(
        default=99, ge=1, description="Messages Weibo allows within one window."
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s?#]+$",
        description="Where citizens reach this service: the answer page's links in "
        "acknowledgements, holding replies and notifications are built on it.",
    )
    answer_page_attempts: int = Field(
        default=10,
        ge=1,
        description="Wrong query codes allowed per reference within ANSWER_PAGE_WINDOW_MINUTES; "
        "then the page answers 429 for that reference until the window is over.",
    )
    answer_page_window_minutes: int = Field(
        default=60, ge=1, description="The answer page's rate-limit window."
    )
    subscribe_fields: dict[str, str] = Field(
        default={"character_string1": "{reference}", "phrase2": "{status}", "time3": "{date}"},
        description="A subscription notification's keywords and their texts, where the account "
        "sets no subscribe_fields; {reference}, {status} and {date} are filled in.",
    )
    template_fields: dict[str, str] = Field(
        default={"keyword1": "{reference}", "keyword2": "{status}", "keyword3": "{date}"},
        description="A template message's keywords and their texts, where the account sets no "
        "template_fields; {reference}, {status} and {date} are filled in.",
    )
    answer_page_client_attempts: int = Field(
        default=30,
        ge=1,
        description="Wrong query codes allowed per client address within "
        "ANSWER_PAGE_WINDOW_MINUTES, over all references.",
    )
    holding_reply_enabled: bool = Field(
        default=True,
        description="Send a holding reply before the window closes on an unanswered inquiry.",
    )
    holding_reply_lead_hours: float = Field(
        default=4, gt=0, description="How long before the window closes the holding reply goes."
    )
    holding_reply_text: str = Field(
        default="您好，您的留言（编号{reference}）正在办理中，我们将在{due_date}前答复您。"
        "如有补充情况，请直接回复本消息。",
        description="The holding reply; {reference} and {due_date} are filled in. The answer "
        "page's query code and link are added when it is sent.",
    )
    rating_prompt_text: str = Field(
        default="请对编号{reference}的答复进行评价：先回复1（已解决）或2（未解决），再回复1至5"
        "（1非常满意，2满意，3基本满意，4不满意，5非常不满意），例如回复“11”。",
        description="Asks the citizen to rate the answer once it reached them; {reference}.",
    )
    rating_reminder_text: str = Field(
        default="您好，编号{reference}的答复还未收到您的评价：回复两位数字即可，例如“11”"
        "（1已解决/2未解决，1非常满意至5非常不满意）。",
        description="The one reminder, RATING_REMINDER_DAYS after the prompt; {reference}.",
    )
    rating_window_days: float = Field(
        default=7, gt=0, description="Digits count as a rating this long after the prompt."
    )
    rating_reminder_days: float = Field(
        default=3, gt=0, description="One reminder after this long without a rating."
    )
    callback_working_days: int = Field(
        default=5,
        ge=1,
        description="A bad rating's call-back (回访) is due in this many working days.",
    )
    publications_pull_days: int = Field(
        default=30, ge=1, description="The daily pull reads published articles this far back."
    )
    comments_poll_days: int = Field(
        default=30, ge=1, description="Comments are polled on articles this recent."
    )
    media_dir: Path = Field(
        default=PROJECT_ROOT / "var" / "media",
        description="The file store for media citizens send: a local folder, or a shared volume "
        "mounted on every instance when scaled out.",
    )
    media_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest media file kept."
    )
    media_s3_bucket: str = Field(
        default="",
        description="An S3-compatible bucket for media instead of MEDIA_DIR (credentials from "
        "boto3's chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).",
    )
    media_s3_endpoint_url: str = Field(
        default="",
        description="The object store's URL when it is not AWS (MinIO, a cloud's OSS/COS/OBS).",
    )
    media_s3_prefix: str = Field(
        default="media/", description="Where in the bucket media files are kept."
    )
    media_s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="How the bucket is named in requests: `virtual` (bucket.host) where the "
        "store requires it (e.g. Aliyun OSS), `path` (host/bucket) for MinIO; `auto` lets boto3 "
        "choose.",
    )
    delivery_sending_timeout_seconds: float = Field(
        default=120,
        gt=0,
        description="A delivery still `sending` after this long (its worker died mid-call) "
        "becomes `uncertain`: never resent blindly.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Local state for development: embedded database, generated admin token.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _async_psycopg_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith(("postgres://", "postgresql://")):
            # One driver everywhere: psycopg 3 (see README, Design).
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not value.startswith("postgresql+psycopg://"):
            raise ValueError("must be a PostgreSQL URL (postgresql+psycopg://…)")
        return value

    @field_validator("admin_token")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 24:
            raise ValueError("must be a random value of at least 24 characters, not a placeholder")
        return value


def _report(name: str, message: str) -> None:
    print(f"configuration error: {name.upper()}: {message}", file=sys.stderr, flush=True)


def configuration_error(name: str, message: str) -> NoReturn:
    """Stop the process with one line naming the setting (never its value), exit code 2."""
    _report(name, message)
    raise SystemExit(2)


def settings_or_exit() -> "Settings":
    """The settings, or one line per invalid setting and exit code 2 (no traceback, no value:
    pydantic's own message would echo the input, a secret among them)."""
    try:
        return settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "settings"
            _report(name, str(error["msg"]).removeprefix("Value error, "))
        raise SystemExit(2) from None


@cache
def settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()


async def current_settings() -> Settings:
    """The settings as a dependency (async: no thread hop per request)."""
    return settings()
