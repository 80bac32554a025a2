"""Durable jobs of the outbox: one delivery per job, and the sweep that finds sends a dead
worker left behind."""

import asyncio
from datetime import UTC, datetime

import httpx
from procrastinate import JobContext, RetryStrategy

from app.accounts.models import Platform
from app.db import sessionmaker
from app.delivery import service, wechat, weibo
from app.delivery.models import DeliveryStatus, Via
from app.inquiries.models import Channel
from app.settings import settings
from app.worker import app

# A busy platform (-1, 45009) or a connection that failed: 6 attempts in all, 4, 16, 64, 256
# and 1,024 seconds apart (about 23 minutes); then the delivery is `failed`, visibly.
ATTEMPTS = 6
BACKOFF = RetryStrategy(max_attempts=ATTEMPTS - 1, exponential_wait=4)


class TryAgain(Exception):
    """The platform was busy or unreachable: the job runs again after its backoff."""


@app.task(name=service.TASK, queue="routing", retry=BACKOFF, pass_context=True)
async def deliver_reply(context: JobContext, delivery_id: int) -> None:
    await deliver(delivery_id, last_attempt=context.job.attempts + 1 >= ATTEMPTS)


async def deliver(delivery_id: int, *, last_attempt: bool = False) -> None:
    """Claim (committed `sending`), call the platform outside any transaction, settle."""
    async with sessionmaker().begin() as session:
        job = await service.claim(session, delivery_id, now=datetime.now(UTC))
    if job is None:
        return
    if job.via is Via.message and job.channel is Channel.comment and job.comment is None:
        # Visible, never silent: a comment inquiry with no comment behind it has nowhere to go.
        await _settle(
            job,
            DeliveryStatus.failed,
            "unsupported",
            "the comment is not known (not on a recorded article, or not from a read feed)",
        )
        return
    if job.platform is Platform.weibo:
        await _deliver_weibo(job, last_attempt=last_attempt)
        return
    if not (job.app_id and job.secret):
        await _settle(job, DeliveryStatus.failed, "unconfigured", "the account has no AppSecret")
        return
    base = settings().wechat_api_base
    async with httpx.AsyncClient() as http:
        try:
            for force in (False, True):
                access = await _token(http, job, force=force, last_attempt=last_attempt)
                if access is None:
                    return
                try:
                    await _send(http, base, access, job)
                    break
                except wechat.WeChatError as exc:
                    if exc.code in wechat.TOKEN and not force:
                        continue  # refresh the token, then once more
                    raise
        except wechat.WeChatError as exc:
            if exc.code == wechat.ALREADY_REPLIED and job.comment is not None:
                # One reply per comment: it has one (an earlier attempt's, or the back office's).
                await _settle(job, DeliveryStatus.delivered, str(exc.code), exc.message)
                return
            if exc.code in wechat.BUSY:
                await _later(job, str(exc.code), exc.message, last_attempt=last_attempt)
                return
            # Only a message waits for the window; a notification is not bound to it.
            status = (
                DeliveryStatus.awaiting_window
                if exc.code in wechat.WINDOW and job.via is Via.message
                else DeliveryStatus.failed
            )
            await _settle(job, status, str(exc.code), exc.message)
            return
        except wechat.Unsent as exc:
            await _later(job, "unsent", str(exc), last_attempt=last_attempt)
            return
        except wechat.Unknown as exc:
            await _settle(job, DeliveryStatus.uncertain, "unknown", str(exc))
            return
    await _settle(job, DeliveryStatus.delivered)


async def _send(http: httpx.AsyncClient, base: str, access: str, job: service.Job) -> None:
    """The reply itself, or a notification that it is ready (with the answer page's link)."""
    if job.comment is not None:
        msg_data_id, index, comment_id = job.comment
        await wechat.comment_reply(
            http,
            base,
            access_token=access,
            msg_data_id=msg_data_id,
            index=index,
            user_comment_id=comment_id,
            content=job.text,
        )
        return
    if job.via is Via.message:
        await wechat.send_text(
            http, base, access_token=access, openid=job.citizen_id, content=job.text
        )
        return
    await wechat.send_notification(
        http,
        base,
        job.via.value,
        access_token=access,
        openid=job.citizen_id,
        template_id=job.template_id or "",
        link=job.link or "",
        data=job.data or {},
    )


# The token fetch holds the account's token row: bounded, well under the sending timeout.
TOKEN_SECONDS = 20.0


async def _token(
    http: httpx.AsyncClient, job: service.Job, *, force: bool, last_attempt: bool
) -> str | None:
    """The account's access token. Nothing was sent yet, so a token call that failed in any way
    but a refusal is retried later (the row back to `queued`), never `uncertain`; a refusal (a
    wrong AppSecret, 40164 …) is `failed`, with the platform's word. None: settled."""
    try:
        async with asyncio.timeout(TOKEN_SECONDS), sessionmaker().begin() as session:
            return await service.token(session, http, job, now=datetime.now(UTC), force=force)
    except wechat.WeChatError as exc:
        if exc.code in wechat.BUSY:
            await _later(job, str(exc.code), exc.message, last_attempt=last_attempt)
        else:
            why = f"access token: {exc.message}"
            await _settle(job, DeliveryStatus.failed, str(exc.code), why)
        return None
    except (wechat.Unsent, wechat.Unknown, TimeoutError, KeyError, ValueError) as exc:
        why = f"access token: {type(exc).__name__}: {exc}"
        await _later(job, "token", why, last_attempt=last_attempt)
        return None


async def _later(job: service.Job, code: str, error: str, *, last_attempt: bool) -> None:
    """Nothing was sent (busy, unreachable): back to `queued` and TryAgain, so procrastinate
    runs the job again after its backoff; on the last attempt, `failed`, visibly."""
    if last_attempt:
        await _settle(job, DeliveryStatus.failed, code, error)
        return
    await _settle(job, DeliveryStatus.queued, code, error)
    raise TryAgain(f"{code} {error}")


async def _settle(
    job: service.Job, status: DeliveryStatus, code: str | None = None, error: str = ""
) -> None:
    """This attempt's outcome (an answer that comes too late changes nothing)."""
    async with sessionmaker().begin() as session:
        await service.settle(
            session,
            job.delivery_id,
            status,
            now=datetime.now(UTC),
            code=code,
            error=error,
            attempt=job.attempt,
        )


@app.periodic(cron="* * * * *")
@app.task(name="recover_deliveries", queue="routing", queueing_lock="recover_deliveries")
async def recover_deliveries(timestamp: int) -> None:
    """Sends left `sending` by a worker that died become `uncertain`, never resent."""
    async with sessionmaker().begin() as session:
        await service.recover(session, now=datetime.fromtimestamp(timestamp, UTC))


@app.task(name="citizen_wrote", queue="routing")
async def citizen_wrote(account_id: int, citizen_id: str) -> None:
    """Queued by intake for "查询" and rating digits (messages that join no inquiry): the window
    to the citizen is open again, and what waited for it goes out."""
    async with sessionmaker().begin() as session:
        await service.wake(session, account_id=account_id, citizen_id=citizen_id)


@app.task(name="citizen_unfollowed", queue="routing", retry=RetryStrategy(max_attempts=5))
async def citizen_unfollowed(account_id: int, citizen_id: str) -> None:
    """Queued by intake on an unfollow: what waits for the citizen there fails, visibly."""
    async with sessionmaker().begin() as session:
        await service.unfollowed(
            session, account_id=account_id, citizen_id=citizen_id, now=datetime.now(UTC)
        )


@app.periodic(cron="*/5 * * * *")
@app.task(name="send_holding_replies", queue="routing", queueing_lock="send_holding_replies")
async def send_holding_replies(timestamp: int) -> None:
    """Every five minutes: holding replies before windows close on unanswered inquiries."""
    async with sessionmaker().begin() as session:
        await service.send_holding_replies(session, now=datetime.fromtimestamp(timestamp, UTC))


async def _deliver_weibo(job: service.Job, *, last_attempt: bool) -> None:
    """Weibo's fan-service reply, with the account's access token (no refresh API: an invalid
    one is a failure the admin fixes, shown with Weibo's word)."""
    if not job.weibo_token:
        await _settle(
            job, DeliveryStatus.failed, "unconfigured", "the account has no fan-service token"
        )
        return
    async with httpx.AsyncClient() as http:
        try:
            if job.comment is not None:  # a public reply under the post
                post_id, _, comment_id = job.comment
                await weibo.comment_reply(
                    http,
                    settings().weibo_api_base,
                    access_token=job.weibo_token,
                    comment_id=comment_id,
                    post_id=post_id,
                    content=job.text,
                )
            else:
                await weibo.reply_text(
                    http,
                    settings().weibo_api_base,
                    access_token=job.weibo_token,
                    receiver_id=job.citizen_id,
                    content=job.text,
                )
        except weibo.WeiboError as exc:
            if exc.busy and job.comment is not None:
                # A public reply may have been posted: never twice (the department checks).
                await _settle(job, DeliveryStatus.uncertain, str(exc.code), exc.message)
            elif exc.busy:
                await _later(job, str(exc.code), exc.message, last_attempt=last_attempt)
            else:
                await _settle(job, DeliveryStatus.failed, str(exc.code), exc.message)
            return
        except wechat.Unsent as exc:
            await _later(job, "unsent", str(exc), last_attempt=last_attempt)
            return
        except wechat.Unknown as exc:
            await _settle(job, DeliveryStatus.uncertain, "unknown", str(exc))
            return
    await _settle(job, DeliveryStatus.delivered)
