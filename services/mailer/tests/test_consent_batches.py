"""A batch of consent events plans as the same events one at a time would (handlers.apply_consents)."""

from datetime import UTC, datetime
from uuid import uuid4

from assent_mailer import handlers
from assent_mailer.domain import REVOKED, SHARED
from assent_mailer.fakes import memory_mailers
from assent_mailer.wakeup import WorkArrived
from assent_shared.cloudevents import EventMeta
from assent_shared.events import ConsentGranted, ConsentRevoked, DeliveryCancelled

NOW = datetime.now(UTC)


def change(subject, granted: bool, seq: int):
    kind = ConsentGranted if granted else ConsentRevoked
    event = kind(subject_id=subject, purpose="surveys", recipient="surveys-co", seq=seq, policy_version=1,
                 source="user", occurred_at=NOW)
    return event, EventMeta(id=str(uuid4()), type=kind.__name__, source="test", time=NOW)


async def known_subject(mailers):
    subject = uuid4()
    async with mailers.transaction() as store:
        await store.upsert_contact(subject, "ann@example.com")
        await store.upsert_processor("surveys-co", "Survey Co", "https://surveys.example/hook", ["surveys"],
                                     "processor-secret-0123")
    return subject


def webhooks(mailers, subject):
    return [(d["kind"], d["status"], d["consent_event_id"]) for d in mailers.store.deliveries.values()
            if d["subject_id"] == subject and d["channel"] == "webhook"]


async def test_a_revoke_and_a_new_grant_in_one_batch_still_tell_the_processor_of_the_revoke():
    mailers, work = memory_mailers(), WorkArrived()
    subject = await known_subject(mailers)
    first = change(subject, True, 1)
    async with mailers.transaction() as store:
        await handlers.apply_consents(store, [first], work=work)
    [share] = mailers.store.deliveries.values()
    share["status"] = "sent"
    revoke, grant = change(subject, False, 2), change(subject, True, 3)
    async with mailers.transaction() as store:
        await handlers.apply_consents(store, [revoke, grant], work=work)
    assert sorted(webhooks(mailers, subject)) == sorted([
        (SHARED, "sent", first[1].id), (REVOKED, "pending", revoke[1].id), (SHARED, "pending", grant[1].id)])


async def test_a_grant_revoked_in_the_same_batch_is_cancelled_and_announced_and_a_stale_event_changes_nothing():
    mailers, work = memory_mailers(), WorkArrived()
    subject = await known_subject(mailers)
    grant, revoke, stale = change(subject, True, 1), change(subject, False, 2), change(subject, True, 1)
    async with mailers.transaction() as store:
        await handlers.apply_consents(store, [grant, revoke, stale], work=work)
    assert webhooks(mailers, subject) == [(SHARED, "cancelled", grant[1].id)]
    assert [type(e) for e in mailers.store.published] == [DeliveryCancelled]
    assert mailers.store.consents[(subject, "surveys", "surveys-co")].event_id == revoke[1].id
