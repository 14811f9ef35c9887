"""A delivery that keeps failing ends after ASSENT_MAX_DELIVERY_ATTEMPTS, on real PostgreSQL and Kafka."""

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from assent_mailer.main import create_app
from assent_mailer.settings import MailerSettings
from assent_shared.events import ConsentGranted, ConsentRevoked, UserRegistered
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, free_port, unique
from assent_devtools.testing.receiver import ProcessorReceiver
from assent_devtools.testing.topics import publish, read_topic

BOUND = 3


async def register(infra, prefix, user_id, email):
    await publish(infra.kafka_bootstrap, prefix + "identity.users.v1", UserRegistered(
        user_id=user_id, email=email, registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=True))


async def consent(infra, prefix, subject, purpose, recipient, granted, seq):
    kind = ConsentGranted if granted else ConsentRevoked
    return await publish(infra.kafka_bootstrap, prefix + "consent.consents.v1", kind(
        subject_id=subject, purpose=purpose, recipient=recipient, seq=seq, policy_version=1, source="user",
        occurred_at=datetime.now(UTC)))


async def _mailer(infra, new_database, smtp_port: int):
    prefix = unique("mb-") + "."
    settings = MailerSettings(**base_settings(infra, await new_database("mailer"), prefix, smtp_port=smtp_port,
                                              retry_base_seconds=0.05, retry_max_seconds=0.2,
                                              max_delivery_attempts=BOUND))
    return prefix, settings


async def _given_up(client, admin, user, kind):
    rows = (await client.get(f"/v1/subjects/{user}/deliveries", headers=admin)).json()
    return [d for d in rows if d["kind"] == kind and d["status"] == "failed"]


async def _published(infra, prefix, delivery_id):
    records = await read_topic(infra.kafka_bootstrap, prefix + "mailer.deliveries.v1")
    return [m for m, r in records if delivery_id.encode() in r.value]


async def test_a_processor_that_keeps_failing_stops_at_the_bound_and_still_hears_the_revoke(infra, new_database):
    # It refuses as many times as the bound allows, then takes what comes: only the revocation can come.
    refusing = ProcessorReceiver(secret="refusing-secret-" + unique(), fail_first=BOUND)
    prefix, settings = await _mailer(infra, new_database, free_port())
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    try:
        async with serve(create_app(settings)) as client:
            pid = unique("refusing-")
            added = await client.put(f"/v1/processors/{pid}", headers=admin, json={
                "name": "Refusing Co", "endpoint_url": refusing.url, "purposes": ["surveys"],
                "signing_secret": refusing.secret})
            assert added.status_code == 200, added.text
            user = uuid4()
            await register(infra, prefix, user, f"{unique('b')}@example.com")
            await consent(infra, prefix, user, "surveys", pid, True, 1)
            [share] = await eventually(lambda: _given_up(client, admin, user, "subject.shared"), timeout=30)
            assert share["attempts"] == BOUND and len(refusing.attempts) == BOUND and not refusing.accepted

            async def gave_up():
                return [m for m in await _published(infra, prefix, share["delivery_id"]) if m.type == "DeliveryFailed"]

            [event] = await eventually(gave_up, timeout=30)
            assert event.subject == str(user)
            types = [m.type for m in await _published(infra, prefix, share["delivery_id"])]
            assert types.count("DeliveryAttemptFailed") == BOUND - 1 and "ProcessorDelivered" not in types

            # The share gave up, but the processor may have kept the data: a revoke is still sent.
            revoke = await consent(infra, prefix, user, "surveys", pid, False, 2)
            [told] = await eventually(lambda: refusing.accepted, timeout=30)
            assert told["event"] == "subject.revoked" and told["consent_event_id"] == revoke.id
            assert [a["event"] for a in refusing.attempts].count("subject.shared") == BOUND
    finally:
        refusing.close()


async def test_mail_to_a_relay_that_never_answers_is_failed_after_the_bound(infra, new_database):
    prefix, settings = await _mailer(infra, new_database, free_port())  # nothing listens there
    admin = {"Authorization": f"Bearer {settings.admin_token}"}
    async with serve(create_app(settings)) as client:
        user = uuid4()
        await register(infra, prefix, user, f"{unique('r')}@example.com")
        [welcome] = await eventually(lambda: _given_up(client, admin, user, "welcome"), timeout=30)
        assert welcome["attempts"] == BOUND and welcome["sent_at"] is None

        async def gave_up():
            return [m for m in await _published(infra, prefix, welcome["delivery_id"]) if m.type == "DeliveryFailed"]

        await eventually(gave_up, timeout=30)
        records = await read_topic(infra.kafka_bootstrap, prefix + "mailer.deliveries.v1")
        [(_, record)] = [(m, r) for m, r in records if m.type == "DeliveryFailed"
                         and welcome["delivery_id"].encode() in r.value]
        assert b'"attempts":3' in record.value.replace(b" ", b"") and b"example.com" not in record.value


def test_the_bound_is_at_least_one_attempt():
    with pytest.raises(ValueError):
        MailerSettings(max_delivery_attempts=0)
