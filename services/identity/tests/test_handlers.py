"""Every identity use case on the in-memory store: what it records, what it publishes, what it refuses."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import jwt
import pytest

from assent_identity import domain, handlers, links
from assent_identity.fakes import memory_identities
from assent_identity.keyowner import SELF, DataKeys, NotKeyOwner
from assent_identity.links import MAIL_TOKEN_CONTEXT, MailLinks, TooManyMails, sealed_binding
from assent_identity.passwords import Passwords
from assent_identity.ports import EmailTaken
from assent_identity.settings import IdentitySettings
from assent_identity.tokens import KeyVault
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    ERASURE_CONFIRMERS, EmailVerificationRequested, EmailVerified, ErasureConfirmed, PasswordResetRequested,
    PolicyUpdated, SessionsRevoked, UserEmailChangedV2, UserErased, UserRegisteredV2,
)
from assent_shared.personal import SubjectErased, unseal
from assent_shared.sealing import Sealer

SETTINGS = IdentitySettings(environment="test", argon2_memory_kib=1024, argon2_time_cost=1, key_cache_seconds=300)
PASSWORD = "a fine long secret"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Kit:
    identities: object
    clock: Clock
    passwords: Passwords
    vault: KeyVault
    keys: DataKeys
    links: MailLinks

    @property
    def store(self):
        return self.identities.store

    async def register(self, email: str | None = None, opt_in: bool = True, password: str = PASSWORD):
        return await handlers.register_user(
            self.identities, domain.RegisterUser(email=email or f"{uuid4().hex[:8]}@example.com", password=password,
                                                 newsletter_opt_in=opt_in, display_name="Ann", locale="de"),
            settings=SETTINGS, passwords=self.passwords, keys=self.keys, links=self.links)

    async def login(self, email: str, password: str = PASSWORD, client: str | None = "203.0.113.7"):
        return await handlers.start_session(self.identities, email, password, client, settings=SETTINGS,
                                            passwords=self.passwords, vault=self.vault)

    def token(self, event_type: type, user_id: UUID) -> str:
        """The newest link token sealed for the mailer, opened as the mailer does."""
        [*_, event] = [e for e in self.store.published_of(event_type) if e.user_id == user_id]
        return Sealer(SETTINGS.mail_token_secret, MAIL_TOKEN_CONTEXT).open(
            event.sealed_token, sealed_binding(event_type.__name__, user_id))


PASSWORDS = Passwords(SETTINGS)


@pytest.fixture
def kit() -> Kit:
    clock = Clock()
    identities = memory_identities(clock)
    return Kit(identities, clock, PASSWORDS, KeyVault(SETTINGS.signing_key_secret),
               DataKeys(identities, SETTINGS.data_key_secret, SETTINGS.key_clients), MailLinks(SETTINGS))


async def on_event(kit: Kit, apply, event) -> None:
    async with kit.identities.transaction() as store:
        await apply(store, event, EventMeta(id=str(uuid4()), type="t", source="test", time=datetime.now(UTC)))


async def test_registration_publishes_sealed_fields_the_policy_in_force_and_a_verification_link(kit):
    await on_event(kit, handlers.apply_policy_updated, PolicyUpdated(
        policy_id="privacy", version=3, title="t", summary="s", effective_at=kit.clock.now, published_at=kit.clock.now))
    user = await kit.register("Ann@Example.com")
    assert (user.email, user.email_verified, user.locale) == ("ann@example.com", False, "de")
    [registered] = kit.store.published_of(UserRegisteredV2)
    assert (registered.policy_version, registered.newsletter_opt_in) == (3, True)
    key = await kit.keys.key(SELF, user.id, registered.email.key_id)
    assert unseal(key, registered.email, "UserRegisteredV2", "email") == "ann@example.com"
    assert unseal(key, registered.display_name, "UserRegisteredV2", "display_name") == "Ann"
    [link] = kit.store.published_of(EmailVerificationRequested)
    assert link.user_id == user.id and kit.token(EmailVerificationRequested, user.id).count(".") == 1


async def test_a_taken_address_or_a_weak_password_registers_nothing(kit):
    await kit.register("ann@example.com")
    before = list(kit.store.published)
    with pytest.raises(EmailTaken):
        await kit.register("ann@example.com")
    with pytest.raises(domain.InvalidInput):
        await kit.register("bob@example.com", password="short")
    assert kit.store.published == before


async def test_a_session_signs_a_token_the_published_keys_verify_and_refresh_rotates_it(kit):
    user = await kit.register("ann@example.com")
    issued = await kit.login("ANN@example.com ")
    jwks = await handlers.publish_jwks(kit.identities, settings=SETTINGS, vault=kit.vault)
    claims = jwt.decode(issued.access_token, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["EdDSA"],
                        audience="assent", options={"verify_iss": False})
    assert claims["sub"] == str(user.id)
    assert (await handlers.verify_access_token(kit.identities, issued.access_token, settings=SETTINGS))["sub"] == str(
        user.id)
    renewed = await handlers.refresh_session(kit.identities, issued.refresh_token, settings=SETTINGS, vault=kit.vault)
    assert renewed.refresh_token != issued.refresh_token
    with pytest.raises(handlers.InvalidCredentials):  # a refresh token works once
        await handlers.refresh_session(kit.identities, issued.refresh_token, settings=SETTINGS, vault=kit.vault)


async def test_a_wrong_password_an_unknown_address_and_a_disabled_account_are_the_same_refusal(kit):
    user = await kit.register("ann@example.com")
    for email, password in [("ann@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)]:
        with pytest.raises(handlers.InvalidCredentials):
            await kit.login(email, password)
    assert await handlers.disable_user(kit.identities, user.id, settings=SETTINGS)
    assert not await handlers.disable_user(kit.identities, user.id, settings=SETTINGS)
    with pytest.raises(handlers.InvalidCredentials):
        await kit.login("ann@example.com")
    assert kit.store.published_of(SessionsRevoked)[-1].session_ids == ()


async def test_failures_lock_the_account_and_a_success_clears_them(kit):
    await kit.register("ann@example.com")
    for _ in range(domain.ACCOUNT_THROTTLE.free):
        with pytest.raises(handlers.InvalidCredentials):
            await kit.login("ann@example.com", "wrong password!")
    with pytest.raises(handlers.Throttled) as locked:
        await kit.login("ann@example.com")
    assert locked.value.retry_after >= 1
    kit.clock.now += timedelta(seconds=domain.ACCOUNT_THROTTLE.cap + 1)
    await kit.login("ann@example.com")
    assert not any(k.startswith("account:") for k in kit.store.failures)
    assert all("ann" not in k and "203.0.113" not in k for k in kit.store.failures)  # keyed hashes only


async def test_spent_throttle_rows_are_pruned_and_a_live_lock_stays(kit):
    await kit.register("ann@example.com")
    for _ in range(domain.ACCOUNT_THROTTLE.free):
        with pytest.raises(handlers.InvalidCredentials):
            await kit.login("ann@example.com", "wrong password!")
    assert await handlers.prune_throttle(kit.identities) == 0
    kit.clock.now += timedelta(seconds=domain.CLIENT_THROTTLE.window + domain.CLIENT_THROTTLE.cap + 1)
    assert await handlers.prune_throttle(kit.identities) == 2  # the account's row and the client's
    assert kit.store.failures == {}


async def test_logout_ends_the_session_and_says_so(kit):
    user = await kit.register("ann@example.com")
    issued = await kit.login("ann@example.com")
    sid = UUID((await handlers.verify_access_token(kit.identities, issued.access_token, settings=SETTINGS))["sid"])
    await handlers.end_session(kit.identities, sid, settings=SETTINGS)
    with pytest.raises(handlers.SessionEnded):
        await handlers.verify_access_token(kit.identities, issued.access_token, settings=SETTINGS)
    [ended] = kit.store.published_of(SessionsRevoked)
    assert (ended.user_id, ended.session_ids) == (user.id, (sid,))
    await handlers.end_session(kit.identities, sid, settings=SETTINGS)
    assert len(kit.store.published_of(SessionsRevoked)) == 1


async def test_a_token_of_a_rotated_key_verifies_while_it_may_be_unexpired(kit):
    await kit.register("ann@example.com")
    issued = await kit.login("ann@example.com")
    await handlers.rotate_keys(kit.identities, vault=kit.vault)
    assert len((await handlers.publish_jwks(kit.identities, settings=SETTINGS, vault=kit.vault))["keys"]) == 2
    await handlers.verify_access_token(kit.identities, issued.access_token, settings=SETTINGS)
    kit.clock.now += timedelta(seconds=SETTINGS.access_token_seconds + 61)
    with pytest.raises(handlers.InvalidCredentials):
        await handlers.verify_access_token(kit.identities, issued.access_token, settings=SETTINGS)


async def test_console_attempts_lock_a_client_out_and_a_success_lifts_it(kit):
    for _ in range(domain.CONSOLE_CLIENT_LOCKOUT.free):
        await handlers.reserve_console_attempt(kit.identities, "admin", "198.51.100.1", settings=SETTINGS)
    with pytest.raises(handlers.Throttled):
        await handlers.reserve_console_attempt(kit.identities, "admin", "198.51.100.1", settings=SETTINGS)
    await handlers.reserve_console_attempt(kit.identities, "admin", "198.51.100.200", settings=SETTINGS)
    await handlers.release_console_attempt(kit.identities, "admin", "198.51.100.200", settings=SETTINGS)
    kit.clock.now += timedelta(seconds=domain.CONSOLE_CLIENT_LOCKOUT.lock + 1)
    await handlers.reserve_console_attempt(kit.identities, "admin", "198.51.100.1", settings=SETTINGS)


async def test_an_email_change_needs_the_password_publishes_the_sealed_address_and_a_new_link(kit):
    user = await kit.register("ann@example.com")
    await kit.register("bob@example.com")
    with pytest.raises(handlers.InvalidCredentials):
        await handlers.change_email(kit.identities, user.id, "new@example.com", "wrong password!",
                                    passwords=kit.passwords, keys=kit.keys, links=kit.links)
    with pytest.raises(EmailTaken):
        await handlers.change_email(kit.identities, user.id, "bob@example.com", PASSWORD,
                                    passwords=kit.passwords, keys=kit.keys, links=kit.links)
    changed = await handlers.change_email(kit.identities, user.id, "New@example.com", PASSWORD,
                                          passwords=kit.passwords, keys=kit.keys, links=kit.links)
    assert (changed.email, changed.email_verified) == ("new@example.com", False)
    [event] = kit.store.published_of(UserEmailChangedV2)
    key = await kit.keys.key(SELF, user.id, event.email.key_id)
    assert unseal(key, event.email, "UserEmailChangedV2", "email") == "new@example.com"
    assert len([e for e in kit.store.published_of(EmailVerificationRequested) if e.user_id == user.id]) == 2


async def test_a_password_change_ends_every_other_session(kit):
    user = await kit.register("ann@example.com")
    kept, other = await kit.login("ann@example.com"), await kit.login("ann@example.com")
    sid = UUID((await handlers.verify_access_token(kit.identities, kept.access_token, settings=SETTINGS))["sid"])
    with pytest.raises(domain.InvalidInput):
        await handlers.change_password(kit.identities, user.id, sid, PASSWORD, "short", settings=SETTINGS,
                                       passwords=kit.passwords)
    await handlers.change_password(kit.identities, user.id, sid, PASSWORD, "another long secret",
                                   settings=SETTINGS, passwords=kit.passwords)
    await handlers.verify_access_token(kit.identities, kept.access_token, settings=SETTINGS)
    with pytest.raises(handlers.SessionEnded):
        await handlers.verify_access_token(kit.identities, other.access_token, settings=SETTINGS)
    await kit.login("ann@example.com", "another long secret")


async def test_users_are_found_by_id_and_by_address(kit):
    user = await kit.register("ann@example.com")
    assert await handlers.get_user(kit.identities, user.id) == user
    assert await handlers.find_user(kit.identities, " ANN@example.com") == user
    assert await handlers.find_user(kit.identities, "nobody@example.com") is None


async def test_erasure_deletes_the_account_shreds_its_key_and_waits_for_every_confirmation(kit):
    user = await kit.register("ann@example.com")
    await kit.login("ann@example.com")
    key_id = kit.store.published_of(UserRegisteredV2)[0].email.key_id
    await handlers.erase_user(kit.identities, user.id, settings=SETTINGS, keys=kit.keys)
    assert await handlers.get_user(kit.identities, user.id) is None and kit.store.sessions == {}
    assert kit.store.forgotten == [str(user.id)]
    [erased] = kit.store.published_of(UserErased)
    assert erased.user_id == user.id and kit.store.published_of(SessionsRevoked)[-1].user_id == user.id
    with pytest.raises(SubjectErased):
        await kit.keys.key(SELF, user.id, key_id)
    status = await handlers.erasure_status(kit.identities, user.id, settings=SETTINGS)
    others = sorted(set(ERASURE_CONFIRMERS) - {SELF})  # identity confirmed its own part in the erasure
    assert status["waiting_for"] == [*others, "key caches"] and not status["complete"]
    for service in others:
        await on_event(kit, handlers.apply_erasure_confirmed,
                       ErasureConfirmed(user_id=user.id, service=service, confirmed_at=datetime.now(UTC)))
    status = await handlers.erasure_status(kit.identities, user.id, settings=SETTINGS)
    assert set(status["confirmed"]) == {*ERASURE_CONFIRMERS, SELF}
    assert status["waiting_for"] == ["key caches"] and not status["complete"]  # a fetched key may still be cached
    cached_for = timedelta(seconds=SETTINGS.key_cache_seconds)
    assert status["key_caches_expire_at"] == kit.store.erasures[user.id] + cached_for
    later = SETTINGS.model_copy(update={"key_cache_seconds": 1e-9})
    assert (await handlers.erasure_status(kit.identities, user.id, settings=later))["complete"]
    assert await handlers.erasure_status(kit.identities, uuid4(), settings=SETTINGS) is None


async def test_a_confirmation_for_no_erasure_is_not_recorded_and_erasures_list_newest_first(kit):
    stranger = uuid4()
    await on_event(kit, handlers.apply_erasure_confirmed,
                   ErasureConfirmed(user_id=stranger, service="consent", confirmed_at=datetime.now(UTC)))
    first, second = await kit.register(), await kit.register()
    await handlers.erase_user(kit.identities, first.id, settings=SETTINGS, keys=kit.keys)
    kit.clock.now += timedelta(seconds=1)
    await handlers.erase_user(kit.identities, second.id, settings=SETTINGS, keys=kit.keys)
    listed = await handlers.list_erasures(kit.identities, None, 10, settings=SETTINGS)
    assert [UUID(e["user_id"]) for e in listed] == [second.id, first.id]
    assert stranger not in kit.store.confirmations


async def test_verifying_the_address_releases_the_signup_opt_in_once(kit):
    user = await kit.register("ann@example.com")
    token = kit.token(EmailVerificationRequested, user.id)
    await links.verify_email(kit.identities, token)
    [verified] = kit.store.published_of(EmailVerified)
    assert (verified.user_id, verified.newsletter_opt_in) == (user.id, True)
    with pytest.raises(domain.InvalidToken):  # used
        await links.verify_email(kit.identities, token)
    assert (await handlers.get_user(kit.identities, user.id)).email_verified
    assert not await links.resend_verification(kit.identities, user.id, links=kit.links)


@pytest.mark.parametrize("token", ["nonsense", "a.b", ""])
async def test_an_unknown_or_malformed_token_is_invalid(kit, token):
    with pytest.raises(domain.InvalidToken):
        await links.verify_email(kit.identities, token)


async def test_resending_is_limited_per_account_and_hour(kit):
    user = await kit.register("ann@example.com")
    for _ in range(SETTINGS.mails_per_account_hour - 1):
        assert await links.resend_verification(kit.identities, user.id, links=kit.links)
    with pytest.raises(TooManyMails):
        await links.resend_verification(kit.identities, user.id, links=kit.links)


async def test_a_reset_mails_only_real_accounts_and_resetting_ends_every_session(kit):
    user = await kit.register("ann@example.com")
    issued = await kit.login("ann@example.com")
    for email in ("ann@example.com", "nobody@example.com"):
        await links.request_password_reset(kit.identities, email, "203.0.113.9", settings=SETTINGS, links=kit.links)
    [mail] = kit.store.published_of(PasswordResetRequested)
    assert mail.user_id == user.id
    token = kit.token(PasswordResetRequested, user.id)
    with pytest.raises(domain.InvalidInput):
        await links.reset_password(kit.identities, token, "short", settings=SETTINGS, passwords=kit.passwords)
    await links.reset_password(kit.identities, token, "a brand new secret", settings=SETTINGS,
                               passwords=kit.passwords)
    with pytest.raises(handlers.SessionEnded):
        await handlers.verify_access_token(kit.identities, issued.access_token, settings=SETTINGS)
    assert kit.store.published_of(SessionsRevoked)[-1].session_ids == ()
    await kit.login("ann@example.com", "a brand new secret")
    with pytest.raises(domain.InvalidToken):
        await links.reset_password(kit.identities, token, "yet another secret", settings=SETTINGS,
                                   passwords=kit.passwords)


async def test_an_expired_reset_link_is_refused(kit):
    user = await kit.register("ann@example.com")
    await links.request_password_reset(kit.identities, "ann@example.com", "c", settings=SETTINGS, links=kit.links)
    token = kit.token(PasswordResetRequested, user.id)
    kit.store.mail_tokens[token.split(".")[0]]["expires_at"] = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(domain.InvalidToken):
        await links.reset_password(kit.identities, token, "a brand new secret", settings=SETTINGS,
                                   passwords=kit.passwords)


async def test_reset_requests_are_limited_per_client(kit):
    for _ in range(SETTINGS.resets_per_client_hour):
        await links.request_password_reset(kit.identities, "x@example.com", "c", settings=SETTINGS, links=kit.links)
    with pytest.raises(TooManyMails):
        await links.request_password_reset(kit.identities, "x@example.com", "c", settings=SETTINGS, links=kit.links)
    await links.request_password_reset(kit.identities, "x@example.com", "d", settings=SETTINGS, links=kit.links)


async def test_a_services_key_is_its_own_to_delete_and_every_access_is_audited(kit):
    subject = uuid4()
    key = await kit.keys.key_for("mailer", subject)
    assert await kit.keys.key("consent", subject, key.key_id) == key
    with pytest.raises(NotKeyOwner):
        await kit.keys.erase("consent", subject)
    await kit.keys.erase("mailer", subject)
    with pytest.raises(SubjectErased):
        await kit.keys.key_for("mailer", subject)
    assert [(r["service"], r["action"], r["outcome"]) for r in await kit.keys.audit(subject)] == [
        ("mailer", "create", "ok"), ("consent", "read", "ok"), ("mailer", "erase", "ok")]
    assert kit.keys.client_named("mailer", SETTINGS.key_clients["mailer"]) == "mailer"
    assert kit.keys.client_named("mailer", SETTINGS.key_clients["consent"]) is None
