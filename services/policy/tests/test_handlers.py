"""Every policy use case on the in-memory store: what it records, what it publishes, what it refuses."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from assent_policy import domain, handlers
from assent_policy.fakes import memory_policies
from assent_policy.settings import PolicySettings
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    FIRST_PARTY, ErasureConfirmed, PolicyAccepted, PolicyUpdated, UserErased, UserRegistered,
)

SETTINGS = PolicySettings(environment="test")
POLICY = SETTINGS.policy_id


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def new(title: str = "v", effective_at: datetime | None = None, text: str = "text",
        uses: tuple[domain.DataUse, ...] = ()) -> domain.NewVersion:
    return domain.NewVersion(title, "summary", text, False, uses, effective_at)


async def seeded(clock: Clock | None = None):
    policies = memory_policies(clock or Clock())
    await handlers.seed_policy(policies, settings=SETTINGS)
    return policies


def updates(policies) -> list[int]:
    return [e.version for e in policies.store.published_of(PolicyUpdated)]


async def on_event(policies, apply, event, **deps) -> None:
    async with policies.transaction() as store:
        await apply(store, event, EventMeta(id=str(uuid4()), type="t", source="test", time=datetime.now(UTC)),
                    **deps)


async def test_seeding_twice_puts_version_one_in_force_and_announces_it_once():
    policies = await seeded()
    await handlers.seed_policy(policies, settings=SETTINGS)
    assert updates(policies) == [1]
    current = await handlers.current_version(policies, POLICY)
    assert current is not None and current.version == 1 and current.title == domain.FIRST_VERSION_TITLE


async def test_a_version_published_now_is_in_force_and_announced():
    policies = await seeded()
    created = await handlers.publish_version(policies, POLICY, new("two"), expected=2)
    assert (created.version, created.in_force_since is not None) == (2, True)
    assert updates(policies) == [1, 2]
    assert (await handlers.get_version(policies, POLICY, 1))[1] == 2


async def test_an_expected_number_that_is_not_next_is_a_conflict_and_changes_nothing():
    policies = await seeded()
    for expected in (1, 3):
        with pytest.raises(handlers.VersionConflict):
            await handlers.publish_version(policies, POLICY, new(), expected=expected)
    assert updates(policies) == [1] and (await handlers.list_versions(policies, POLICY))[0][-1].version == 1


async def test_a_data_use_declared_twice_is_invalid():
    policies = await seeded()
    use = domain.DataUse("newsletter", FIRST_PARTY, ("email",))
    with pytest.raises(domain.InvalidInput):
        await handlers.publish_version(policies, POLICY, new(uses=(use, use)), expected=None)


async def test_a_scheduled_version_waits_for_its_time_then_is_announced_once():
    clock = Clock()
    policies = await seeded(clock)
    at = clock.now + timedelta(hours=1)
    scheduled = await handlers.publish_version(policies, POLICY, new("later", effective_at=at), expected=None)
    assert scheduled.in_force_since is None and await handlers.promote_due(policies) == []
    with pytest.raises(domain.ScheduleConflict):  # nothing may take effect before a version still scheduled
        await handlers.publish_version(policies, POLICY, new("sooner"), expected=None)
    clock.now = at + timedelta(seconds=1)
    [promoted] = await handlers.promote_due(policies)
    assert promoted.version == 2 and await handlers.promote_due(policies) == []
    assert updates(policies) == [1, 2]


async def test_versions_come_a_page_at_a_time_with_the_number_in_force():
    policies = await seeded()
    for _ in range(3):
        await handlers.publish_version(policies, POLICY, new(), expected=None)
    page, current = await handlers.list_versions(policies, POLICY, after=1, limit=2)
    assert [v.version for v in page] == [2, 3] and current == 4


async def test_an_unknown_version_is_not_found():
    policies = await seeded()
    with pytest.raises(handlers.NotFound):
        await handlers.get_version(policies, POLICY, 9)
    with pytest.raises(handlers.NotFound):
        await handlers.diff_versions(policies, POLICY, 1, 9)
    with pytest.raises(handlers.NotFound):
        await handlers.accept_version(policies, uuid4(), POLICY, 9)


async def test_a_diff_shows_the_text_and_the_data_use_that_changed():
    policies = await seeded()
    use = domain.DataUse("surveys", "acme", ("email",))
    await handlers.publish_version(policies, POLICY, new(text="we share", uses=(use,)), expected=None)
    found = await handlers.diff_versions(policies, POLICY, 1, 2)
    assert "+we share" in found.text_diff and found.data_use_added == (use,)
    assert [u.purpose for u in found.data_use_removed] == ["newsletter"]


async def test_the_notice_shows_a_fresh_change_and_never_the_first_version():
    clock = Clock()
    policies = await seeded(clock)
    assert await handlers.show_notice(policies, settings=SETTINGS) is None
    await handlers.publish_version(policies, POLICY, new("two"), expected=None)
    notice = await handlers.show_notice(policies, settings=SETTINGS)
    assert notice is not None and (notice.version, notice.title) == (2, "two")


async def test_explicit_acceptance_is_recorded_once_and_a_scheduled_version_cannot_be_accepted():
    clock = Clock()
    policies = await seeded(clock)
    user = uuid4()
    first, created = await handlers.accept_version(policies, user, POLICY, 1)
    again, created_again = await handlers.accept_version(policies, user, POLICY, 1)
    assert (created, created_again, again) == (True, False, first)
    assert [(e.how, e.version) for e in policies.store.published_of(PolicyAccepted)] == [("explicit", 1)]
    await handlers.publish_version(policies, POLICY, new(effective_at=clock.now + timedelta(days=1)), expected=None)
    with pytest.raises(handlers.NotInForce):
        await handlers.accept_version(policies, user, POLICY, 2)


async def test_activity_accepts_the_version_in_force_by_continued_use_once():
    policies = await seeded()
    user = uuid4()
    number, recorded = await handlers.record_activity(policies, user, settings=SETTINGS)
    assert number == 1 and recorded is not None and recorded.how == "continued_use"
    assert await handlers.record_activity(policies, user, settings=SETTINGS) == (1, None)
    await handlers.publish_version(policies, POLICY, new(), expected=None)
    number, recorded = await handlers.record_activity(policies, user, settings=SETTINGS)
    assert number == 2 and recorded is not None and recorded.version == 2


async def test_signup_records_the_version_stamped_at_registration_and_erasure_removes_every_acceptance():
    policies = await seeded()
    await handlers.publish_version(policies, POLICY, new(), expected=None)
    user = uuid4()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    signup = UserRegistered(user_id=user, email="someone@example.com", registered_at=at, policy_version=1,
                            newsletter_opt_in=False)
    await on_event(policies, handlers.apply_user_registered, signup, settings=SETTINGS)
    [accepted] = await handlers.list_acceptances(policies, user)
    assert (accepted.version, accepted.how, accepted.accepted_at) == (1, "signup", at)
    await on_event(policies, handlers.apply_user_erased, UserErased(user_id=user, erased_at=datetime.now(UTC)))
    assert await handlers.list_acceptances(policies, user) == []
    assert policies.store.forgotten == [str(user)]
    [confirmed] = policies.store.published_of(ErasureConfirmed)
    assert confirmed.service == "policy"
    await on_event(policies, handlers.apply_user_registered, signup, settings=SETTINGS)  # redelivered late
    assert await handlers.record_activity(policies, user, settings=SETTINGS) == (2, None)
    assert await handlers.list_acceptances(policies, user) == []


async def test_acceptances_come_in_time_order_a_page_at_a_time():
    policies = await seeded()
    await handlers.publish_version(policies, POLICY, new(), expected=None)
    user = uuid4()
    await handlers.accept_version(policies, user, POLICY, 1)
    await handlers.accept_version(policies, user, POLICY, 2)
    both = await handlers.list_acceptances(policies, user)
    assert [a.version for a in both] == [1, 2]
    first = both[0]
    rest = await handlers.list_acceptances(policies, user, (first.accepted_at, first.policy_id, first.version), 5)
    assert rest == both[1:]
