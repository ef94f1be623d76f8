"""The outgoing mail queue and its sender.

Mail is written to ``outgoing_mail`` in the transaction of whatever it reports (a task that
ended, a rule that shares a folder), so it is never lost; workers send it (``send_due``),
each message held by one sender at a time (a conditional UPDATE claims it, as timer runs
are claimed). A refused or unreachable SMTP server delays the message: it is tried again
after ``mail_retry_seconds`` (30 s), then twice, four times as long, ... up to an hour
apart, for two days, then given up with the error kept.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from arctern.config import Settings
from arctern.context import AppContext
from arctern.db.models.timers import OutgoingMail

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=2)
LONGEST_WAIT = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=2)
BATCH = 20


def mail_enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def enqueue(
    session: AsyncSession,
    settings: Settings,
    recipient: str,
    subject: str,
    body: str,
    now: datetime,
) -> bool:
    """Queue one message in the caller's transaction; False when mail is not set up."""
    if not mail_enabled(settings) or "@" not in recipient:
        return False
    session.add(
        OutgoingMail(
            recipient=recipient,
            subject=subject[:300],
            body=body,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
            sent=False,
        )
    )
    return True


async def send_due(ctx: AppContext) -> int:
    """Send what is due; how many messages were tried."""
    settings = ctx.settings
    if not mail_enabled(settings):
        return 0
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        due = list(
            await session.scalars(
                select(OutgoingMail.id)
                .where(
                    OutgoingMail.sent.is_(False),
                    OutgoingMail.next_attempt_at <= now,
                    or_(OutgoingMail.claimed_until.is_(None), OutgoingMail.claimed_until <= now),
                )
                .order_by(OutgoingMail.next_attempt_at)
                .limit(BATCH)
            )
        )
    tried = 0
    for mail_id in due:
        message = await _claim(ctx, mail_id, now)
        if message is None:
            continue
        tried += 1
        try:
            await _send(settings, message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _retry_later(ctx, mail_id, f"{type(exc).__name__}: {exc}")
            continue
        async with ctx.db.session() as session:
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == mail_id)
                .values(sent=True, claimed_until=None, last_error=None)
            )
    return tried


async def _claim(ctx: AppContext, mail_id: int, now: datetime) -> EmailMessage | None:
    async with ctx.db.session() as session:
        claimed = await session.execute(
            update(OutgoingMail)
            .where(
                OutgoingMail.id == mail_id,
                OutgoingMail.sent.is_(False),
                or_(OutgoingMail.claimed_until.is_(None), OutgoingMail.claimed_until <= now),
            )
            .values(claimed_until=now + CLAIM, attempts=OutgoingMail.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]
            return None
        row = await session.get(OutgoingMail, mail_id)
        assert row is not None
        message = EmailMessage()
        message["From"] = ctx.settings.mail_from
        message["To"] = row.recipient
        message["Subject"] = row.subject
        message["Message-ID"] = f"<arctern-mail-{row.id}-{int(row.created_at.timestamp())}@arctern>"
        message.set_content(row.body)
        return message


async def _send(settings: Settings, message: EmailMessage) -> None:
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_security == "tls",
        start_tls=settings.smtp_security == "starttls",
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=30,
    )


async def _retry_later(ctx: AppContext, mail_id: int, error: str) -> None:
    now = ctx.clock.now()
    async with ctx.db.session() as session:
        row = await session.get(OutgoingMail, mail_id)
        if row is None:
            return
        first = timedelta(seconds=ctx.settings.mail_retry_seconds)
        wait = min(first * (2 ** max(0, row.attempts - 1)), LONGEST_WAIT)
        row.last_error = error[:2000]
        row.claimed_until = None
        if now - row.created_at > GIVE_UP_AFTER:
            log.warning("giving up mail %s to %s: %s", mail_id, row.recipient, error)
            row.sent = True  # not sent; kept with its error, no longer tried
        else:
            log.info("mail %s not sent (%s); next try in %s", mail_id, error, wait)
            row.next_attempt_at = now + wait
