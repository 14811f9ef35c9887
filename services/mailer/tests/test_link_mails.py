"""Mails with single-use links (verification, reset): the token arrives sealed and leaves only inside the mail."""

import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from assent_mailer.main import create_app
from assent_mailer.settings import MailerSettings
from assent_shared.events import EmailVerificationRequested, PasswordResetRequested, UserRegistered
from assent_shared.sealing import Sealer
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import publish

SITE = "https://site.example"


@pytest.fixture
async def mailer(infra, new_database, sink):
    prefix = unique("ml-") + "."
    database = await new_database("mailer")
    settings = MailerSettings(**base_settings(infra, database, prefix, smtp_port=sink.port, site_url=SITE))
    async with serve(create_app(settings)) as client:
        client.prefix, client.settings, client.database = prefix, settings, database
        client.admin = {"Authorization": f"Bearer {settings.admin_token}"}
        yield client


def mail_to(sink, address):
    return [m for m in sink.messages() if m["To"] == address]


async def registered(infra, mailer):
    user, email = uuid4(), f"{unique('l')}@example.com"
    await publish(infra.kafka_bootstrap, mailer.prefix + "identity.users.v1", UserRegistered(
        user_id=user, email=email, registered_at=datetime.now(UTC), policy_version=1, newsletter_opt_in=True))
    return user, email


async def request_link(infra, mailer, kind, user, token, secret=None, expires_in=600):
    sealer = Sealer(secret or mailer.settings.mail_token_secret, "assent-mail-token")
    now = datetime.now(UTC)
    return await publish(infra.kafka_bootstrap, mailer.prefix + "identity.users.v1", kind(
        user_id=user, sealed_token=sealer.seal(token, f"{kind.__name__}:{user}"),
        expires_at=now + timedelta(seconds=expires_in), requested_at=now))


async def deliveries(mailer, user):
    response = await mailer.get(f"/v1/subjects/{user}/deliveries", headers=mailer.admin)
    assert response.status_code == 200
    return response.json()


async def test_welcome_links_to_my_data_and_link_mails_carry_the_opened_token(mailer, infra, sink):
    user, email = await registered(infra, mailer)
    await request_link(infra, mailer, EmailVerificationRequested, user, "selector123.verifier-of-the-token")
    await request_link(infra, mailer, PasswordResetRequested, user, "selector456.verifier-of-the-reset")
    mails = await eventually(lambda: (found := mail_to(sink, email)) and len(found) == 3 and found)
    by_subject = {m["Subject"]: m.get_body(("plain",)).get_content() for m in mails}
    assert f"{SITE}/my-data" in by_subject["Welcome to the Assent demo site"]
    assert f"{SITE}/verify?token=selector123.verifier-of-the-token" in by_subject["Confirm your email address"]
    assert f"{SITE}/reset?token=selector456.verifier-of-the-reset" in by_subject["Reset your password"]

    async def all_sent():
        found = await deliveries(mailer, user)
        return found if {d["status"] for d in found} == {"sent"} and len(found) == 3 else None

    sent = await eventually(all_sent)
    assert {d["kind"] for d in sent} == {"welcome", "verify_email", "password_reset"}
    conn = await asyncpg.connect(mailer.database)
    try:  # the sealed token is dropped once the mail is out
        rows = await conn.fetch("SELECT content FROM deliveries WHERE kind IN ('verify_email', 'password_reset')")
    finally:
        await conn.close()
    assert [r["content"] for r in rows] == [None, None]


async def test_expired_or_foreign_tokens_are_cancelled_and_the_next_mail_still_goes(mailer, infra, sink):
    user, email = await registered(infra, mailer)
    await request_link(infra, mailer, PasswordResetRequested, user, "selector000.expired-token-value", expires_in=-1)
    await request_link(infra, mailer, PasswordResetRequested, user, "selector111.foreign-token-value",
                       secret="another secret of some length")
    await request_link(infra, mailer, PasswordResetRequested, user, "selector222.the-good-token-value")

    async def settled():
        found = [d for d in await deliveries(mailer, user) if d["kind"] == "password_reset"]
        return found if len(found) == 3 and all(d["status"] != "pending" for d in found) else None

    resets = await eventually(settled)
    assert sorted(d["status"] for d in resets) == ["cancelled", "cancelled", "sent"]
    bodies = [m.get_body(("plain",)).get_content() for m in mail_to(sink, email) if m["Subject"] == "Reset your password"]
    assert len(bodies) == 1 and re.search(r"token=selector222\.the-good-token-value\b", bodies[0])


async def test_no_link_mail_for_an_unknown_subject(mailer, infra):
    stranger = uuid4()
    meta = await request_link(infra, mailer, EmailVerificationRequested, stranger, "selector333.nobody-to-write-to")

    async def consumed():
        conn = await asyncpg.connect(mailer.database)
        try:
            return await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", meta.id)
        finally:
            await conn.close()

    await eventually(consumed)
    assert await deliveries(mailer, stranger) == []
