"""Password-login throttling: atomic per-minute counters and a bound on concurrent hashing.

Each login attempt first takes a slot in three counters of the current minute: this user from
this address, this address for any user, and the whole deployment. The counters live in the
database (``auth_login_attempts``), so every API host shares them, and each is taken with one
``INSERT .. ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count``: the row lock (on
PostgreSQL) or the write lock (SQLite) serialises concurrent attempts, so no two can both read
a count below the limit. An attempt over any limit is refused (429) before its password is
hashed, and its increments are rolled back. A correct password gives its slots back, so the
limits count failed (and in-flight) attempts, as before.

Windows are fixed calendar minutes: a guesser can get up to twice a limit across a minute
boundary, which is still a bound, and one upsert per key is cheaper than a sliding log.

Hashing itself (argon2 with ``argon2_memory_cost`` KiB per check) runs at most
``password_hash_concurrency`` at a time per process; more requests wait their turn, so a flood
costs latency, not memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.concurrency import run_in_threadpool

from arctern.auth.hashing import check_password, digest, hash_password, new_secret
from arctern.context import AppContext
from arctern.db.models.auth import LoginAttemptCounter

PASSWORD_CHECKS = Counter(
    "arctern_password_checks_total", "Password hashes verified for login attempts"
)
LOGINS_THROTTLED = Counter(
    "arctern_logins_throttled_total", "Login attempts refused before hashing", ["limit"]
)
_KEEP = timedelta(hours=1)


class _OverLimit(Exception):
    def __init__(self, which: str) -> None:
        self.which = which


@dataclass(frozen=True)
class Reservation:
    """The counter slots one admitted attempt holds (given back on success)."""

    keys: tuple[str, ...]
    window_start: datetime


class LoginThrottle:
    """One per process; counters are shared through the database, hashing slots are local."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._hash_slots = asyncio.Semaphore(max(1, ctx.settings.password_hash_concurrency))
        self._dummy_hash: str | None = None
        insert = sqlite_insert if ctx.db.is_sqlite else postgresql_insert
        upsert = insert(LoginAttemptCounter).values(
            key=bindparam("key"), window_start=bindparam("window_start"), count=1
        )
        self._increment = upsert.on_conflict_do_update(
            index_elements=["key", "window_start"],
            set_={"count": LoginAttemptCounter.count + 1},
        ).returning(LoginAttemptCounter.count)

    async def reserve(self, username: str, address: str) -> Reservation | str:
        """Take a slot in every counter, or return the name of the limit that is reached."""
        settings = self._ctx.settings
        now = self._ctx.clock.now()
        window_start = now.replace(second=0, microsecond=0)
        # The username is attacker text of any length: its digest keeps the key bounded.
        limits = (
            (f"user:{digest(username)}|{address[:100]}", settings.login_attempts_per_minute),
            (f"addr:{address[:100]}", settings.login_attempts_per_address_per_minute),
            ("global", settings.login_attempts_global_per_minute),
        )
        try:
            async with self._ctx.db.session() as session:
                # Always the same key order, so concurrent transactions cannot deadlock.
                for key, limit in limits:
                    count = await session.scalar(
                        self._increment, {"key": key, "window_start": window_start}
                    )
                    if count is None or count > limit:
                        raise _OverLimit(key.split(":", 1)[0])
        except _OverLimit as over:
            LOGINS_THROTTLED.labels(over.which).inc()
            return over.which
        return Reservation(tuple(key for key, _ in limits), window_start)

    async def succeeded(self, reservation: Reservation) -> None:
        """A correct password does not count against the limits: give the slots back."""
        async with self._ctx.db.session() as session:
            for key in reservation.keys:
                await session.execute(
                    update(LoginAttemptCounter)
                    .where(
                        LoginAttemptCounter.key == key,
                        LoginAttemptCounter.window_start == reservation.window_start,
                    )
                    .values(count=LoginAttemptCounter.count - 1)
                )

    async def failed(self) -> None:
        """Forget old windows (cheap with the index, and failures are what fill the table)."""
        cutoff = self._ctx.clock.now() - _KEEP
        async with self._ctx.db.session() as session:
            await session.execute(
                delete(LoginAttemptCounter).where(LoginAttemptCounter.window_start < cutoff)
            )

    async def check_password(self, password: str, password_hash: str | None) -> bool:
        """Verify under the hashing bound. Without a stored hash (unknown user) a dummy hash
        is checked, so response times do not reveal which usernames exist."""
        async with self._hash_slots:
            PASSWORD_CHECKS.inc()
            return await run_in_threadpool(self._check, password, password_hash)

    def _check(self, password: str, password_hash: str | None) -> bool:
        settings = self._ctx.settings
        if self._dummy_hash is None:
            self._dummy_hash = hash_password(settings, new_secret(16))
        verified = check_password(settings, password, password_hash or self._dummy_hash)
        return verified and bool(password_hash)
