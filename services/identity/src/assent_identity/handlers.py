"""Identity's use cases: one handler each, called by the HTTP routes and the subscribers."""

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from assent_identity import domain, keyowner, storage, tokens
from assent_identity.keyowner import DataKeys
from assent_identity.links import MailLinks
from assent_identity.settings import IdentitySettings
from assent_shared import outbox
from assent_shared.auth import AUDIENCE
from assent_shared.clients import throttle_network
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ERASURE_CONFIRMERS, ErasureConfirmed, PolicyUpdated, SessionsRevoked, UserEmailChangedV2, UserErased,
    UserRegisteredV2,
)
from assent_shared.personal import PersonalFields


class InvalidCredentials(Exception):
    pass


class SessionEnded(InvalidCredentials):
    pass


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__("throttled")
        self.retry_after = max(1, int(retry_after + 0.999))


@dataclass(frozen=True)
class IssuedSession:
    access_token: str
    refresh_token: str
    expires_in: int


def _hash_refresh(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class IdentityHandlers:
    def __init__(self, pool: asyncpg.Pool, settings: IdentitySettings, keys: DataKeys) -> None:
        self._pool = pool
        self._keys = keys
        self._settings = settings
        self._vault = tokens.KeyVault(settings.signing_key_secret)
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verifying against a throwaway hash keeps "no such user" as slow as "wrong password".
        self._decoy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self.links = MailLinks(pool, settings, self._hasher, self._announce_ended)

    @property
    def argon2_parameters(self) -> dict[str, int]:
        return {"time_cost": self._hasher.time_cost, "memory_kib": self._hasher.memory_cost,
                "parallelism": self._hasher.parallelism}

    async def register_user(self, cmd: domain.RegisterUser) -> domain.User:
        email = domain.normalize_email(cmd.email)
        domain.check_password(cmd.password, email)
        locale = domain.normalize_locale(cmd.locale)
        password_hash = await asyncio.to_thread(self._hasher.hash, cmd.password)
        async with self._pool.acquire() as conn, conn.transaction():
            # The newsletter opt-in waits for a verified address: anyone could type a stranger's.
            user = await storage.insert_user(conn, uuid4(), email, password_hash, cmd.display_name, locale,
                                             newsletter_pending=cmd.newsletter_opt_in)
            version = await storage.policy_version(conn, self._settings.policy_id)
            personal = PersonalFields(keyowner.LocalKeyOwner(self._keys, conn))
            name = cmd.display_name
            await outbox.enqueue(conn, UserRegisteredV2(
                user_id=user.id, email=await personal.seal(UserRegisteredV2, "email", user.id, user.email),
                display_name=None if name is None else await personal.seal(UserRegisteredV2, "display_name", user.id, name),
                locale=locale, registered_at=user.created_at, policy_version=version,
                newsletter_opt_in=cmd.newsletter_opt_in,
            ))
            await self.links.issue(conn, user, domain.VERIFY_EMAIL)
        return user

    async def start_session(self, email: str, password: str, client: str | None) -> IssuedSession:
        normalized = email.strip().lower()
        account_key, client_key = self._account_key(normalized), self._client_key(client)
        await self._reserve_attempt((account_key, domain.ACCOUNT_THROTTLE), (client_key, domain.CLIENT_THROTTLE))
        async with self._pool.acquire() as conn:
            found = await storage.credentials_by_email(conn, normalized)
        stored_hash = found[1] if found else self._decoy_hash
        try:
            await asyncio.to_thread(self._hasher.verify, stored_hash, password)
            if found is None or found[0].disabled:
                raise InvalidCredentials
        except (VerificationError, InvalidHashError, InvalidCredentials) as exc:
            raise InvalidCredentials from exc  # the reserved attempt stays counted as a failure
        user = found[0]
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.clear_failures(conn, account_key)
            await storage.release_attempt(conn, client_key, domain.CLIENT_THROTTLE.free)
            if self._hasher.check_needs_rehash(stored_hash):
                await storage.update_password_hash(conn, user.id, await asyncio.to_thread(self._hasher.hash, password))
            return await self._issue(conn, user.id, uuid4(), new_session=True)

    def _account_key(self, normalized_email: str) -> str:
        return "account:" + self._throttle_hash(normalized_email)

    def _client_key(self, address: str | None) -> str:
        return "client:" + self._throttle_hash(throttle_network(address))

    def _throttle_hash(self, value: str) -> str:
        """Throttle keys hold no email or address in the clear, nor a hash anyone could recompute
        from a list of emails without the throttle secret."""
        return hmac.new(self._settings.throttle_key_secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]

    async def reserve_console_attempt(self, account: str, client: str | None) -> None:
        """A sign-in to the Site's console, counted here so that every Site replica counts against the same
        rows; Throttled while the account or the client is locked out."""
        await self._reserve_attempt((self._console_key(account), domain.CONSOLE_ACCOUNT_LOCKOUT),
                                    (self._console_client_key(client), domain.CONSOLE_CLIENT_LOCKOUT))

    async def release_console_attempt(self, account: str, client: str | None) -> None:
        """The console's password was right: the account's failures go, the client's attempt is un-counted."""
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.clear_failures(conn, self._console_key(account))
            await storage.release_attempt(conn, self._console_client_key(client), domain.CONSOLE_CLIENT_LOCKOUT.free)

    def _console_key(self, account: str) -> str:
        return "console-account:" + self._throttle_hash(account)

    def _console_client_key(self, address: str | None) -> str:
        return "console-client:" + self._throttle_hash(throttle_network(address))

    async def _reserve_attempt(self, *keys: tuple[str, domain.ThrottleRule | domain.LockoutRule]) -> None:
        """Count the attempt before the (slow) password check, so parallel guesses cannot all pass a
        lock check that none of them has yet counted against; refuse it while any key is locked."""
        async with self._pool.acquire() as conn, conn.transaction():
            for key, rule in keys:
                attempts, wait = await storage.reserve_attempt(conn, key, rule.window)
                if attempts is None:
                    raise Throttled(max(1.0, wait))  # rolls back the reservation of the other key too
                if seconds := rule.lock_seconds(attempts):
                    await storage.lock(conn, key, seconds)

    async def prune_throttle_forever(self) -> None:
        window = max(rule.window for rule in (domain.ACCOUNT_THROTTLE, domain.CLIENT_THROTTLE,
                                              domain.CONSOLE_ACCOUNT_LOCKOUT, domain.CONSOLE_CLIENT_LOCKOUT))
        while True:
            async with self._pool.acquire() as conn:
                await storage.prune_login_failures(conn, window)
            await asyncio.sleep(self._settings.throttle_prune_seconds)

    async def refresh_session(self, refresh_token: str) -> IssuedSession:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await storage.session_by_refresh(conn, _hash_refresh(refresh_token))
            if row is None:
                raise InvalidCredentials
            user = await storage.user_by_id(conn, row["user_id"])
            if user is None or user.disabled:
                raise InvalidCredentials
            return await self._issue(conn, row["user_id"], row["id"], new_session=False)

    async def _issue(self, conn: asyncpg.Connection, user_id: UUID, session_id: UUID, new_session: bool) -> IssuedSession:
        refresh = secrets.token_urlsafe(32)
        if new_session:
            expires = datetime.now(UTC) + timedelta(seconds=self._settings.refresh_token_seconds)
            await storage.insert_session(conn, session_id, user_id, _hash_refresh(refresh), expires)
        else:
            await storage.rotate_refresh(conn, session_id, _hash_refresh(refresh))
        key = await tokens.current_key(conn, self._vault, timedelta(seconds=self._settings.key_rotation_seconds))
        access = tokens.issue_access_token(key, user_id, session_id, self._settings.jwt_issuer,
                                           self._settings.access_token_seconds)
        return IssuedSession(access, refresh, self._settings.access_token_seconds)

    async def end_session(self, session_id: UUID) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            user_id = await storage.revoke_session(conn, session_id)
            if user_id is not None:
                await self._announce_ended(conn, user_id, (session_id,))

    async def _announce_ended(self, conn: asyncpg.Connection, user_id: UUID, session_ids: tuple[UUID, ...]) -> None:
        """Every service refuses the ended sessions' access tokens once this event reaches it, instead
        of until they expire; no `session_ids` means every session of the user up to now."""
        now = datetime.now(UTC)
        await outbox.enqueue(conn, SessionsRevoked(
            user_id=user_id, session_ids=session_ids, revoked_at=now,
            expires_at=now + timedelta(seconds=self._settings.access_token_seconds + 60)))

    async def get_user(self, user_id: UUID) -> domain.User | None:
        async with self._pool.acquire() as conn:
            return await storage.user_by_id(conn, user_id)

    async def jwks(self) -> dict:
        async with self._pool.acquire() as conn:
            await tokens.current_key(conn, self._vault, timedelta(seconds=self._settings.key_rotation_seconds))
            return {"keys": await self._published_keys(conn)}

    async def _published_keys(self, conn: asyncpg.Connection) -> list[dict]:
        # A retired key stays published while tokens it signed can still be unexpired.
        return await storage.published_keys(conn, self._settings.access_token_seconds + 60)

    async def verify_access_token(self, token: str) -> dict:
        """The claims of a valid token of a live session, checked against the published keys."""
        async with self._pool.acquire() as conn:
            keys = await self._published_keys(conn)
            try:
                kid = jwt.get_unverified_header(token).get("kid")
                jwk = next(k for k in keys if k["kid"] == kid)
                claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience=AUDIENCE,
                                    issuer=self._settings.jwt_issuer, options={"require": ["exp", "sub", "sid"]})
                session_id = UUID(claims["sid"])
            except (jwt.PyJWTError, StopIteration, ValueError, KeyError) as exc:
                raise InvalidCredentials from exc
            if not await storage.session_active(conn, session_id):
                raise SessionEnded
        return claims

    async def rotate_keys(self) -> str:
        async with self._pool.acquire() as conn, conn.transaction():
            await storage.lock_keys(conn)
            return await tokens.rotate(conn, self._vault)

    async def _check_password(self, conn: asyncpg.Connection, user_id: UUID, password: str) -> None:
        stored = await storage.password_hash_of(conn, user_id)
        try:
            await asyncio.to_thread(self._hasher.verify, stored or self._decoy_hash, password)
        except (VerificationError, InvalidHashError) as exc:
            raise InvalidCredentials from exc
        if stored is None:
            raise InvalidCredentials

    async def change_email(self, user_id: UUID, new_email: str, password: str) -> domain.User:
        email = domain.normalize_email(new_email)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check_password(conn, user_id, password)
            await storage.update_email(conn, user_id, email)
            sealed = await PersonalFields(keyowner.LocalKeyOwner(self._keys, conn)).seal(
                UserEmailChangedV2, "email", user_id, email)
            await outbox.enqueue(conn, UserEmailChangedV2(user_id=user_id, email=sealed, changed_at=datetime.now(UTC)))
            user = await storage.user_by_id(conn, user_id)
            assert user is not None
            await self.links.issue(conn, user, domain.VERIFY_EMAIL)
        return user

    async def change_password(self, user_id: UUID, session_id: UUID, current: str, new: str) -> None:
        async with self._pool.acquire() as conn:
            user = await storage.user_by_id(conn, user_id)
        if user is None:
            raise InvalidCredentials
        domain.check_password(new, user.email)
        new_hash = await asyncio.to_thread(self._hasher.hash, new)
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check_password(conn, user_id, current)
            await storage.update_password_hash(conn, user_id, new_hash)
            ended = await storage.revoke_sessions(conn, user_id, keep=session_id)
            if ended:
                await self._announce_ended(conn, user_id, tuple(ended))

    async def disable_user(self, user_id: UUID) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await storage.disable_user(conn, user_id)
            await storage.revoke_sessions(conn, user_id)
            await self._announce_ended(conn, user_id, ())
        return changed

    async def find_user(self, email: str) -> domain.User | None:
        async with self._pool.acquire() as conn:
            return await storage.user_by_email(conn, email.strip().lower())

    async def erase_user(self, user_id: UUID) -> None:
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            user = await storage.user_by_id(conn, user_id)
            if user is not None:  # the account's login-failure row goes with it
                await storage.clear_failures(conn, self._account_key(user.email))
            await storage.erase_user(conn, user_id, now)
            await self._keys.erase(keyowner.SELF, user_id, conn)
            await storage.record_confirmation(conn, user_id, keyowner.SELF, now)
            await outbox.forget(conn, str(user_id))
            await self._announce_ended(conn, user_id, ())
            await outbox.enqueue(conn, UserErased(user_id=user_id, erased_at=now))

    async def erasure_status(self, user_id: UUID) -> dict | None:
        async with self._pool.acquire() as conn:
            found = await storage.erasure_status(conn, user_id)
        return None if found is None else self._erasure(user_id, *found)

    async def list_erasures(self, before: tuple[datetime, UUID] | None, limit: int) -> list[dict]:
        async with self._pool.acquire() as conn:
            rows = await storage.erasure_page(conn, before, limit)
        return [self._erasure(r["user_id"], r["requested_at"], dict(zip(r["services"], r["confirmed_at"], strict=True)))
                for r in rows]

    def _erasure(self, user_id: UUID, requested_at: datetime, confirmations: dict[str, datetime]) -> dict:
        waiting = sorted(set(ERASURE_CONFIRMERS) - set(confirmations))
        # A key fetched before the erasure may still sit in a service's cache, at most this long.
        caches_expire = requested_at + timedelta(seconds=self._settings.key_cache_seconds)
        if datetime.now(UTC) < caches_expire:
            waiting.append("key caches")
        return {"user_id": str(user_id), "requested_at": requested_at, "confirmed": confirmations,
                "key_caches_expire_at": caches_expire, "waiting_for": waiting, "complete": not waiting}

    async def apply_erasure_confirmed(self, conn: asyncpg.Connection, event: ErasureConfirmed, _meta: EventMeta) -> None:
        await storage.record_confirmation(conn, event.user_id, event.service, event.confirmed_at)

    async def apply_policy_updated(self, conn: asyncpg.Connection, event: PolicyUpdated, _meta: EventMeta) -> None:
        await storage.record_policy(conn, event.policy_id, event.version, event.effective_at)
