"""Identity's use cases, one function per command or event: storage (a unit of work, or the inbox's store) first,
then the command, then what else it needs, by keyword. The mail links' use cases are in `links.py`."""

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import jwt

from assent_identity import domain, keyowner, tokens
from assent_identity.keyowner import DataKeys
from assent_identity.links import MailLinks
from assent_identity.passwords import Passwords
from assent_identity.ports import Identities, IdentityStore
from assent_identity.settings import IdentitySettings
from assent_shared.auth import AUDIENCE
from assent_shared.clients import throttle_network
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ERASURE_CONFIRMERS, ErasureConfirmed, PolicyUpdated, UserEmailChangedV2, UserErased, UserRegisteredV2,
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


async def register_user(identities: Identities, cmd: domain.RegisterUser, *, settings: IdentitySettings,
                        passwords: Passwords, keys: DataKeys, links: MailLinks) -> domain.User:
    email = domain.normalize_email(cmd.email)
    domain.check_password(cmd.password, email)
    locale = domain.normalize_locale(cmd.locale)
    password_hash = await passwords.hash(cmd.password)
    async with identities.transaction() as store:
        # The newsletter opt-in waits for a verified address: anyone could type a stranger's.
        user = await store.insert_user(uuid4(), email, password_hash, cmd.display_name, locale,
                                       newsletter_pending=cmd.newsletter_opt_in)
        version = await store.policy_version(settings.policy_id)
        personal = PersonalFields(keyowner.LocalKeyOwner(keys, store))
        name = cmd.display_name
        await store.publish(UserRegisteredV2(
            user_id=user.id, email=await personal.seal(UserRegisteredV2, "email", user.id, user.email),
            display_name=None if name is None else await personal.seal(UserRegisteredV2, "display_name", user.id,
                                                                       name),
            locale=locale, registered_at=user.created_at, policy_version=version,
            newsletter_opt_in=cmd.newsletter_opt_in,
        ))
        await links.issue(store, user, domain.VERIFY_EMAIL)
    return user


async def start_session(identities: Identities, email: str, password: str, client: str | None, *,
                        settings: IdentitySettings, passwords: Passwords,
                        vault: tokens.KeyVault) -> IssuedSession:
    normalized = email.strip().lower()
    account_key, client_key = _account_key(settings, normalized), _client_key(settings, client)
    await _reserve_attempt(identities, (account_key, domain.ACCOUNT_THROTTLE), (client_key, domain.CLIENT_THROTTLE))
    async with identities.reading() as store:
        found = await store.credentials_by_email(normalized)
    stored_hash = found[1] if found else None
    # The reserved attempt stays counted as a failure.
    if not await passwords.matches(stored_hash, password) or found is None or found[0].disabled:
        raise InvalidCredentials
    user = found[0]
    async with identities.transaction() as store:
        await store.clear_failures(account_key)
        await store.release_attempt(client_key, domain.CLIENT_THROTTLE.free)
        if passwords.needs_rehash(stored_hash):
            await store.update_password_hash(user.id, await passwords.hash(password))
        return await _issue(store, user.id, uuid4(), new_session=True, settings=settings, vault=vault)


def _account_key(settings: IdentitySettings, normalized_email: str) -> str:
    return "account:" + _throttle_hash(settings, normalized_email)


def _client_key(settings: IdentitySettings, address: str | None) -> str:
    return "client:" + _throttle_hash(settings, throttle_network(address))


def _console_key(settings: IdentitySettings, account: str) -> str:
    return "console-account:" + _throttle_hash(settings, account)


def _console_client_key(settings: IdentitySettings, address: str | None) -> str:
    return "console-client:" + _throttle_hash(settings, throttle_network(address))


def _throttle_hash(settings: IdentitySettings, value: str) -> str:
    """Throttle keys hold no email or address in the clear, nor a hash anyone could recompute
    from a list of emails without the throttle secret."""
    return hmac.new(settings.throttle_key_secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


async def reserve_console_attempt(identities: Identities, account: str, client: str | None, *,
                                  settings: IdentitySettings) -> None:
    """A sign-in to the Site's console, counted here so that every Site replica counts against the same
    rows; Throttled while the account or the client is locked out."""
    await _reserve_attempt(identities, (_console_key(settings, account), domain.CONSOLE_ACCOUNT_LOCKOUT),
                           (_console_client_key(settings, client), domain.CONSOLE_CLIENT_LOCKOUT))


async def release_console_attempt(identities: Identities, account: str, client: str | None, *,
                                  settings: IdentitySettings) -> None:
    """The console's password was right: the account's failures go, the client's attempt is un-counted."""
    async with identities.transaction() as store:
        await store.clear_failures(_console_key(settings, account))
        await store.release_attempt(_console_client_key(settings, client), domain.CONSOLE_CLIENT_LOCKOUT.free)


async def _reserve_attempt(identities: Identities, *keys: tuple[str, domain.ThrottleRule | domain.LockoutRule]) -> None:
    """Count the attempt before the (slow) password check, so parallel guesses cannot all pass a
    lock check that none of them has yet counted against; refuse it while any key is locked."""
    async with identities.transaction() as store:
        for key, rule in keys:
            attempts, wait = await store.reserve_attempt(key, rule.window)
            if attempts is None:
                raise Throttled(max(1.0, wait))  # rolls back the reservation of the other key too
            if seconds := rule.lock_seconds(attempts):
                await store.lock(key, seconds)


async def prune_throttle(identities: Identities) -> int:
    """Throttle rows no rule needs any more go; how many went."""
    window = max(rule.window for rule in (domain.ACCOUNT_THROTTLE, domain.CLIENT_THROTTLE,
                                          domain.CONSOLE_ACCOUNT_LOCKOUT, domain.CONSOLE_CLIENT_LOCKOUT))
    async with identities.reading() as store:
        return await store.prune_login_failures(window)


async def prune_throttle_forever(identities: Identities, *, settings: IdentitySettings) -> None:
    while True:
        await prune_throttle(identities)
        await asyncio.sleep(settings.throttle_prune_seconds)


async def refresh_session(identities: Identities, refresh_token: str, *, settings: IdentitySettings,
                          vault: tokens.KeyVault) -> IssuedSession:
    async with identities.transaction() as store:
        row = await store.session_by_refresh(_hash_refresh(refresh_token))
        if row is None:
            raise InvalidCredentials
        user = await store.user_by_id(row["user_id"])
        if user is None or user.disabled:
            raise InvalidCredentials
        return await _issue(store, row["user_id"], row["id"], new_session=False, settings=settings, vault=vault)


async def _issue(store: IdentityStore, user_id: UUID, session_id: UUID, *, new_session: bool,
                 settings: IdentitySettings, vault: tokens.KeyVault) -> IssuedSession:
    refresh = secrets.token_urlsafe(32)
    if new_session:
        expires = datetime.now(UTC) + timedelta(seconds=settings.refresh_token_seconds)
        await store.insert_session(session_id, user_id, _hash_refresh(refresh), expires)
    else:
        await store.rotate_refresh(session_id, _hash_refresh(refresh))
    key = await tokens.current_key(store, vault, timedelta(seconds=settings.key_rotation_seconds))
    access = tokens.issue_access_token(key, user_id, session_id, settings.jwt_issuer, settings.access_token_seconds)
    return IssuedSession(access, refresh, settings.access_token_seconds)


async def end_session(identities: Identities, session_id: UUID, *, settings: IdentitySettings) -> None:
    async with identities.transaction() as store:
        user_id = await store.revoke_session(session_id)
        if user_id is not None:
            await tokens.announce_ended(store, user_id, (session_id,), settings=settings)


async def get_user(identities: Identities, user_id: UUID) -> domain.User | None:
    async with identities.reading() as store:
        return await store.user_by_id(user_id)


async def find_user(identities: Identities, email: str) -> domain.User | None:
    async with identities.reading() as store:
        return await store.user_by_email(email.strip().lower())


async def publish_jwks(identities: Identities, *, settings: IdentitySettings, vault: tokens.KeyVault) -> dict:
    async with identities.transaction() as store:
        await tokens.current_key(store, vault, timedelta(seconds=settings.key_rotation_seconds))
        return {"keys": await _published_keys(store, settings)}


async def _published_keys(store: IdentityStore, settings: IdentitySettings) -> list[dict]:
    # A retired key stays published while tokens it signed can still be unexpired.
    return await store.published_keys(settings.access_token_seconds + 60)


async def verify_access_token(identities: Identities, token: str, *, settings: IdentitySettings) -> dict:
    """The claims of a valid token of a live session, checked against the published keys."""
    async with identities.reading() as store:
        keys = await _published_keys(store, settings)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            jwk = next(k for k in keys if k["kid"] == kid)
            claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience=AUDIENCE,
                                issuer=settings.jwt_issuer, options={"require": ["exp", "sub", "sid"]})
            session_id = UUID(claims["sid"])
        except (jwt.PyJWTError, StopIteration, ValueError, KeyError) as exc:
            raise InvalidCredentials from exc
        if not await store.session_active(session_id):
            raise SessionEnded
    return claims


async def rotate_keys(identities: Identities, *, vault: tokens.KeyVault) -> str:
    async with identities.transaction() as store:
        await store.lock_keys()
        return await tokens.rotate(store, vault)


async def _check_password(store: IdentityStore, user_id: UUID, password: str, passwords: Passwords) -> None:
    if not await passwords.matches(await store.password_hash_of(user_id), password):
        raise InvalidCredentials


async def change_email(identities: Identities, user_id: UUID, new_email: str, password: str, *,
                       passwords: Passwords, keys: DataKeys, links: MailLinks) -> domain.User:
    email = domain.normalize_email(new_email)
    async with identities.transaction() as store:
        await _check_password(store, user_id, password, passwords)
        await store.update_email(user_id, email)
        sealed = await PersonalFields(keyowner.LocalKeyOwner(keys, store)).seal(
            UserEmailChangedV2, "email", user_id, email)
        await store.publish(UserEmailChangedV2(user_id=user_id, email=sealed, changed_at=datetime.now(UTC)))
        user = await store.user_by_id(user_id)
        assert user is not None
        await links.issue(store, user, domain.VERIFY_EMAIL)
    return user


async def change_password(identities: Identities, user_id: UUID, session_id: UUID, current: str, new: str, *,
                          settings: IdentitySettings, passwords: Passwords) -> None:
    async with identities.reading() as store:
        user = await store.user_by_id(user_id)
    if user is None:
        raise InvalidCredentials
    domain.check_password(new, user.email)
    new_hash = await passwords.hash(new)
    async with identities.transaction() as store:
        await _check_password(store, user_id, current, passwords)
        await store.update_password_hash(user_id, new_hash)
        ended = await store.revoke_sessions(user_id, keep=session_id)
        if ended:
            await tokens.announce_ended(store, user_id, tuple(ended), settings=settings)


async def disable_user(identities: Identities, user_id: UUID, *, settings: IdentitySettings) -> bool:
    async with identities.transaction() as store:
        changed = await store.disable_user(user_id)
        await store.revoke_sessions(user_id)
        await tokens.announce_ended(store, user_id, (), settings=settings)
    return changed


async def erase_user(identities: Identities, user_id: UUID, *, settings: IdentitySettings, keys: DataKeys) -> None:
    now = datetime.now(UTC)
    async with identities.transaction() as store:
        user = await store.user_by_id(user_id)
        if user is not None:  # the account's login-failure row goes with it
            await store.clear_failures(_account_key(settings, user.email))
        await store.erase_user(user_id, now)
        await keys.erase(keyowner.SELF, user_id, store)
        await store.record_confirmation(user_id, keyowner.SELF, now)
        await store.forget(str(user_id))
        await tokens.announce_ended(store, user_id, (), settings=settings)
        await store.publish(UserErased(user_id=user_id, erased_at=now))


async def erasure_status(identities: Identities, user_id: UUID, *, settings: IdentitySettings) -> dict | None:
    async with identities.reading() as store:
        found = await store.erasure_status(user_id)
    return None if found is None else _erasure(user_id, *found, settings=settings)


async def list_erasures(identities: Identities, before: tuple[datetime, UUID] | None, limit: int, *,
                        settings: IdentitySettings) -> list[dict]:
    async with identities.reading() as store:
        rows = await store.erasure_page(before, limit)
    return [_erasure(r["user_id"], r["requested_at"], dict(zip(r["services"], r["confirmed_at"], strict=True)),
                     settings=settings)
            for r in rows]


def _erasure(user_id: UUID, requested_at: datetime, confirmations: dict[str, datetime], *,
             settings: IdentitySettings) -> dict:
    waiting = sorted(set(ERASURE_CONFIRMERS) - set(confirmations))
    # A key fetched before the erasure may still sit in a service's cache, at most this long.
    caches_expire = requested_at + timedelta(seconds=settings.key_cache_seconds)
    if datetime.now(UTC) < caches_expire:
        waiting.append("key caches")
    return {"user_id": str(user_id), "requested_at": requested_at, "confirmed": confirmations,
            "key_caches_expire_at": caches_expire, "waiting_for": waiting, "complete": not waiting}


async def apply_erasure_confirmed(store: IdentityStore, event: ErasureConfirmed, _meta: EventMeta) -> None:
    await store.record_confirmation(event.user_id, event.service, event.confirmed_at)


async def apply_policy_updated(store: IdentityStore, event: PolicyUpdated, _meta: EventMeta) -> None:
    await store.record_policy(event.policy_id, event.version, event.effective_at)
