"""Single-use links by mail: email verification and password reset.

A link carries `<selector>.<verifier>`. Identity keeps the selector and a SHA-256 of the verifier,
never the token; the mailer gets the token sealed for it (`assent_shared.sealing`) inside an event,
so no one reading the topic can use it. A link works once, until it expires.
"""

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from argon2 import PasswordHasher

from assent_identity import domain, storage
from assent_identity.settings import IdentitySettings
from assent_shared import outbox
from assent_shared.events import EmailVerificationRequested, EmailVerified, PasswordResetRequested
from assent_shared.sealing import Sealer

MAIL_TOKEN_CONTEXT = "assent-mail-token"
AnnounceEnded = Callable[[asyncpg.Connection, UUID, tuple[UUID, ...]], Awaitable[None]]
_EVENTS = {domain.VERIFY_EMAIL: EmailVerificationRequested, domain.RESET_PASSWORD: PasswordResetRequested}


class TooManyMails(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many mails")
        self.retry_after = retry_after


def sealed_binding(event_type: str, user_id: UUID) -> str:
    """What a sealed token is bound to: it opens only in the event type and for the user it was made for."""
    return f"{event_type}:{user_id}"


class MailLinks:
    def __init__(self, pool: asyncpg.Pool, settings: IdentitySettings, hasher: PasswordHasher,
                 announce_ended: AnnounceEnded) -> None:
        self._pool = pool
        self._announce_ended = announce_ended
        self._settings = settings
        self._hasher = hasher
        self._sealer = Sealer(settings.mail_token_secret, MAIL_TOKEN_CONTEXT)
        # Client addresses are throttled under a keyed hash, useless to anyone without the secret.
        self._client_key = hmac.new(settings.mail_token_secret.encode(), b"assent-reset-throttle", hashlib.sha256).digest()
        self._lifetimes = {domain.VERIFY_EMAIL: settings.verification_token_seconds,
                           domain.RESET_PASSWORD: settings.reset_token_seconds}

    async def issue(self, conn: asyncpg.Connection, user: domain.User, purpose: domain.TokenPurpose) -> None:
        """Make a link's token and ask the mailer to send it, in the caller's transaction."""
        selector, verifier = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self._lifetimes[purpose])
        await storage.insert_mail_token(conn, selector, domain.verifier_hash(verifier), user.id, purpose, expires)
        event_type = _EVENTS[purpose]
        sealed = self._sealer.seal(f"{selector}.{verifier}", sealed_binding(event_type.__name__, user.id))
        await outbox.enqueue(conn, event_type(user_id=user.id, sealed_token=sealed, expires_at=expires,
                                              requested_at=now, locale=user.locale))

    async def _within_account_limit(self, conn: asyncpg.Connection, user_id: UUID, purpose: str) -> bool:
        sent = await storage.mail_tokens_since(conn, user_id, purpose, 3600)
        return sent < self._settings.mails_per_account_hour

    async def resend_verification(self, user_id: UUID) -> bool:
        """Send a new verification link; False when the address is verified already."""
        async with self._pool.acquire() as conn, conn.transaction():
            user = await storage.user_by_id(conn, user_id)
            if user is None or user.email_verified:
                return False
            if not await self._within_account_limit(conn, user_id, domain.VERIFY_EMAIL):
                raise TooManyMails(3600)
            await self.issue(conn, user, domain.VERIFY_EMAIL)
        return True

    async def verify_email(self, token: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._use(conn, token, domain.VERIFY_EMAIL)
            pending = await storage.mark_verified(conn, row["user_id"])
            if pending is not None:
                await outbox.enqueue(conn, EmailVerified(user_id=row["user_id"], verified_at=datetime.now(UTC),
                                                         newsletter_opt_in=pending))

    async def request_password_reset(self, email: str, client: str) -> None:
        """The same answer whether or not the account exists; only the mail differs."""
        normalized = domain.normalize_email(email)
        client_key = "client:" + hmac.new(self._client_key, client.encode(), hashlib.sha256).hexdigest()[:32]
        async with self._pool.acquire() as conn, conn.transaction():
            if await storage.reset_requests_within_hour(conn, client_key) >= self._settings.resets_per_client_hour:
                raise TooManyMails(3600)
            await storage.record_reset_request(conn, client_key)
            user = await storage.user_by_email(conn, normalized)
            if user is None or user.disabled:
                return
            # Beyond the account's limit the request is dropped silently: a 429 would say the account exists.
            if await self._within_account_limit(conn, user.id, domain.RESET_PASSWORD):
                await self.issue(conn, user, domain.RESET_PASSWORD)

    async def reset_password(self, token: str, password: str) -> None:
        """Set a new password with a reset link; every session of the user ends."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await self._use(conn, token, domain.RESET_PASSWORD)
            user = await storage.user_by_id(conn, row["user_id"])
            if user is None or user.disabled:
                raise domain.InvalidToken
            domain.check_password(password, user.email)
            await storage.update_password_hash(conn, user.id, await asyncio.to_thread(self._hasher.hash, password))
            await storage.drop_mail_tokens(conn, user.id, domain.RESET_PASSWORD)
            # Whoever reset the password may be the owner locking out a thief: every session ends, at
            # identity at once and at every other service when SessionsRevoked reaches it.
            await storage.revoke_sessions(conn, user.id)
            await self._announce_ended(conn, user.id, ())

    async def _use(self, conn: asyncpg.Connection, token: str, purpose: str) -> asyncpg.Record:
        """Check a token and mark it used (in the caller's transaction: a failure after this undoes it)."""
        selector, verifier = domain.split_token(token)
        row = await storage.lock_mail_token(conn, selector, purpose)
        if row is None:
            raise domain.InvalidToken
        domain.check_token(row["verifier_hash"], verifier, row["used_at"], row["expires_at"], datetime.now(UTC))
        await storage.use_mail_token(conn, selector)
        return row
