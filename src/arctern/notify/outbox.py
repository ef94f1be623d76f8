"""The outbox: mail for the SMTP server and webhook POSTs, and the sender that drains it.

A message is written to ``outbox`` in the transaction of whatever it reports (a task that
ended, a rule that shares a folder), so it is never lost; workers send it (``send_due``),
each message held by one sender at a time (a conditional UPDATE claims it, as timer runs
are claimed). A refused or unreachable server delays the message: it is tried again after
``mail_retry_seconds`` (30 s), then twice, four times as long, ... up to an hour apart, for
two days, then given up with the error kept.

A webhook body is JSON; ``X-Arctern-Signature: sha256=<hex>`` is the HMAC-SHA256 of
``<X-Arctern-Timestamp>.<body>`` with the user's webhook secret, so the receiver can check
who sent it and refuse replays of old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.config import Settings
from arctern.context import SCHEDULE_TOPIC, AppContext
from arctern.db.engine import mark_changed
from arctern.db.models.timers import OutboxMessage

log = logging.getLogger(__name__)

# How long a sender holds a message it is sending: longer than a send can take (SMTP 30 s,
# webhook 15 s); a sender that died mid-send delays that message by at most this.
SMTP_TIMEOUT = 30.0
CLAIM = timedelta(seconds=SMTP_TIMEOUT + 15)
LONGEST_WAIT = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=2)
BATCH = 20
WEBHOOK_TIMEOUT = 15.0


class DeliveryFailed(Exception):
    """The receiving server did not take the message (it is tried again later)."""


def mail_enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def enqueue_mail(
    session: AsyncSession,
    settings: Settings,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
) -> bool:
    """Queue one mail in the caller's transaction; False when mail is not set up."""
    if not mail_enabled(settings) or "@" not in recipient:
        return False
    session.add(_message("mail", recipient, subject[:300], body, None, now))
    mark_changed(session, SCHEDULE_TOPIC)
    return True


def sign(secret: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def enqueue_webhook(
    session: AsyncSession, url: str, secret: str, event: str, payload: dict[str, Any], now: datetime
) -> None:
    """Queue one signed webhook POST in the caller's transaction."""
    body = json.dumps({"event": event, **payload}, sort_keys=True)
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-Arctern-Event": event,
        "X-Arctern-Timestamp": timestamp,
        "X-Arctern-Signature": sign(secret, timestamp, body),
    }
    session.add(_message("webhook", url, event, body, headers, now))
    mark_changed(session, SCHEDULE_TOPIC)


def _message(
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    headers: dict[str, str] | None,
    now: datetime,
) -> OutboxMessage:
    return OutboxMessage(
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        headers=headers,
        created_at=now,
        next_attempt_at=now,
        attempts=0,
        sent=False,
    )


async def send_due(ctx: AppContext) -> int:
    """Send what is due; how many messages were tried."""
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        due = list(
            await session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.sent.is_(False),
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
                )
                .order_by(OutboxMessage.next_attempt_at)
                .limit(BATCH)
            )
        )
    tried = 0
    for message_id in due:
        message = await _claim(ctx, message_id, now)
        if message is None:
            continue
        tried += 1
        try:
            if message.channel == "webhook":
                await _post(message)
            else:
                await _send_mail(ctx.settings, message)
        except (DeliveryFailed, aiosmtplib.SMTPException, httpx.HTTPError, OSError) as exc:
            await _retry_later(ctx, message_id, f"{type(exc).__name__}: {exc}")
            continue
        async with ctx.db.session() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(sent=True, claimed_until=None, last_error=None)
            )
    return tried


async def _claim(ctx: AppContext, message_id: int, now: datetime) -> OutboxMessage | None:
    async with ctx.db.session() as session:
        claimed = await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.sent.is_(False),
                or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until <= now),
            )
            .values(claimed_until=now + CLAIM, attempts=OutboxMessage.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        return await session.get(OutboxMessage, message_id)


async def _send_mail(settings: Settings, row: OutboxMessage) -> None:
    if not mail_enabled(settings):
        raise DeliveryFailed("no SMTP server is configured")
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = f"<arctern-{row.id}-{int(row.created_at.timestamp())}@arctern>"
    message.set_content(row.body)
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_security == "tls",
        start_tls=settings.smtp_security == "starttls",
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=SMTP_TIMEOUT,
    )


async def _post(row: OutboxMessage) -> None:
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as client:
        response = await client.post(row.recipient, content=row.body, headers=row.headers or {})
    if not response.is_success:
        raise DeliveryFailed(f"HTTP {response.status_code} from the webhook")


async def _retry_later(ctx: AppContext, message_id: int, error: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        row = await session.get(OutboxMessage, message_id)
        if row is None:
            return
        first = timedelta(seconds=ctx.settings.mail_retry_seconds)
        wait = min(first * (2 ** max(0, row.attempts - 1)), LONGEST_WAIT)
        row.last_error = error[:2000]
        row.claimed_until = None
        if now - row.created_at > GIVE_UP_AFTER:
            log.warning("giving up %s %s to %s: %s", row.channel, message_id, row.recipient, error)
            row.sent = True  # not sent; kept with its error, no longer tried
        else:
            log.info("%s %s not delivered (%s); next in %s", row.channel, message_id, error, wait)
            row.next_attempt_at = now + wait
