"""Single-use links by mail: email verification and password reset.

A link carries `<selector>.<verifier>`. Identity keeps the selector and a SHA-256 of the verifier,
never the token; the mailer gets the token sealed for it (`assent_shared.sealing`) inside an event,
so no one reading the topic can use it. A link works once, until it expires.
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from uuid import UUID

from assent_identity import domain, tokens
from assent_identity.passwords import Passwords
from assent_identity.ports import Identities, IdentityStore, Row
from assent_identity.settings import IdentitySettings
from assent_shared.events import EmailVerificationRequested, EmailVerified, PasswordResetRequested
from assent_shared.sealing import Sealer

MAIL_TOKEN_CONTEXT = "assent-mail-token"
_EVENTS = {domain.VERIFY_EMAIL: EmailVerificationRequested, domain.RESET_PASSWORD: PasswordResetRequested}


class TooManyMails(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many mails")
        self.retry_after = retry_after


def sealed_binding(event_type: str, user_id: UUID) -> str:
    """What a sealed token is bound to: it opens only in the event type and for the user it was made for."""
    return f"{event_type}:{user_id}"


class MailLinks:
    """What making and checking a link takes: the sealer for the mailer, the throttle key, the lifetimes."""

    def __init__(self, settings: IdentitySettings) -> None:
        self._settings = settings
        self._sealer = Sealer(settings.mail_token_secret, MAIL_TOKEN_CONTEXT)
        # Client addresses are throttled under a keyed hash, useless to anyone without the secret.
        self._client_key = hmac.new(settings.mail_token_secret.encode(), b"assent-reset-throttle",
                                    hashlib.sha256).digest()
        self._lifetimes = {domain.VERIFY_EMAIL: settings.verification_token_seconds,
                           domain.RESET_PASSWORD: settings.reset_token_seconds}

    async def issue(self, store: IdentityStore, user: domain.User, purpose: domain.TokenPurpose) -> None:
        """Make a link's token and ask the mailer to send it, in the caller's transaction."""
        selector, verifier = secrets.token_urlsafe(12), secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self._lifetimes[purpose])
        await store.insert_mail_token(selector, domain.verifier_hash(verifier), user.id, purpose, expires)
        event_type = _EVENTS[purpose]
        sealed = self._sealer.seal(f"{selector}.{verifier}", sealed_binding(event_type.__name__, user.id))
        await store.publish(event_type(user_id=user.id, sealed_token=sealed, expires_at=expires,
                                       requested_at=now, locale=user.locale))

    async def within_account_limit(self, store: IdentityStore, user_id: UUID, purpose: str) -> bool:
        sent = await store.mail_tokens_since(user_id, purpose, 3600)
        return sent < self._settings.mails_per_account_hour

    def client_key(self, client: str) -> str:
        return "client:" + hmac.new(self._client_key, client.encode(), hashlib.sha256).hexdigest()[:32]


async def resend_verification(identities: Identities, user_id: UUID, *, links: MailLinks) -> bool:
    """Send a new verification link; False when the address is verified already."""
    async with identities.transaction() as store:
        user = await store.user_by_id(user_id)
        if user is None or user.email_verified:
            return False
        if not await links.within_account_limit(store, user_id, domain.VERIFY_EMAIL):
            raise TooManyMails(3600)
        await links.issue(store, user, domain.VERIFY_EMAIL)
    return True


async def verify_email(identities: Identities, token: str) -> None:
    async with identities.transaction() as store:
        row = await _use(store, token, domain.VERIFY_EMAIL)
        pending = await store.mark_verified(row["user_id"])
        if pending is not None:
            await store.publish(EmailVerified(user_id=row["user_id"], verified_at=datetime.now(UTC),
                                              newsletter_opt_in=pending))


async def request_password_reset(identities: Identities, email: str, client: str, *, settings: IdentitySettings,
                                 links: MailLinks) -> None:
    """The same answer whether or not the account exists; only the mail differs."""
    normalized = domain.normalize_email(email)
    client_key = links.client_key(client)
    async with identities.transaction() as store:
        if await store.reset_requests_within_hour(client_key) >= settings.resets_per_client_hour:
            raise TooManyMails(3600)
        await store.record_reset_request(client_key)
        user = await store.user_by_email(normalized)
        if user is None or user.disabled:
            return
        # Beyond the account's limit the request is dropped silently: a 429 would say the account exists.
        if await links.within_account_limit(store, user.id, domain.RESET_PASSWORD):
            await links.issue(store, user, domain.RESET_PASSWORD)


async def reset_password(identities: Identities, token: str, password: str, *, settings: IdentitySettings,
                         passwords: Passwords) -> None:
    """Set a new password with a reset link; every session of the user ends."""
    async with identities.transaction() as store:
        row = await _use(store, token, domain.RESET_PASSWORD)
        user = await store.user_by_id(row["user_id"])
        if user is None or user.disabled:
            raise domain.InvalidToken
        domain.check_password(password, user.email)
        await store.update_password_hash(user.id, await passwords.hash(password))
        await store.drop_mail_tokens(user.id, domain.RESET_PASSWORD)
        # Whoever reset the password may be the owner locking out a thief: every session ends, at
        # identity at once and at every other service when SessionsRevoked reaches it.
        await store.revoke_sessions(user.id)
        await tokens.announce_ended(store, user.id, (), settings=settings)


async def _use(store: IdentityStore, token: str, purpose: str) -> Row:
    """Check a token and mark it used (in the caller's transaction: a failure after this undoes it)."""
    selector, verifier = domain.split_token(token)
    row = await store.lock_mail_token(selector, purpose)
    if row is None:
        raise domain.InvalidToken
    domain.check_token(row["verifier_hash"], verifier, row["used_at"], row["expires_at"], datetime.now(UTC))
    await store.use_mail_token(selector)
    return row
