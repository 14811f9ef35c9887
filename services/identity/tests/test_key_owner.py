"""The key owner inside identity: service-authenticated, audited, and erasure deletes the key."""

import base64
from uuid import uuid4

import asyncpg

from assent_shared.personal import development_key_token


def as_service(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {development_key_token(name)}", "Assent-Service": name}


async def test_a_service_gets_a_key_only_with_its_own_token(identity):
    subject = uuid4()
    assert (await identity.post(f"/internal/v1/subject-keys/{subject}")).status_code == 401
    wrong = {"Authorization": f"Bearer {development_key_token('mailer')}", "Assent-Service": "support"}
    assert (await identity.post(f"/internal/v1/subject-keys/{subject}", headers=wrong)).status_code == 401
    made = await identity.post(f"/internal/v1/subject-keys/{subject}", headers=as_service("support"))
    assert made.status_code == 200 and made.json()["subject_id"] == str(subject)
    again = await identity.post(f"/internal/v1/subject-keys/{subject}", headers=as_service("support"))
    assert again.json() == made.json()
    read = await identity.get(f"/internal/v1/subject-keys/{subject}/{made.json()['key_id']}",
                              headers=as_service("mailer"))
    assert read.status_code == 200 and read.json() == made.json()
    unknown = await identity.get(f"/internal/v1/subject-keys/{subject}/{uuid4()}", headers=as_service("mailer"))
    assert unknown.status_code == 404


async def test_only_the_keys_maker_deletes_it_and_then_it_is_gone_for_good(identity):
    subject = uuid4()
    made = (await identity.post(f"/internal/v1/subject-keys/{subject}", headers=as_service("support"))).json()
    refused = await identity.delete(f"/internal/v1/subject-keys/{subject}", headers=as_service("mailer"))
    assert refused.status_code == 403
    assert (await identity.delete(f"/internal/v1/subject-keys/{subject}", headers=as_service("support"))
            ).status_code == 204
    gone = await identity.get(f"/internal/v1/subject-keys/{subject}/{made['key_id']}", headers=as_service("mailer"))
    assert gone.status_code == 410
    assert (await identity.post(f"/internal/v1/subject-keys/{subject}", headers=as_service("support"))
            ).status_code == 410
    audit = await identity.get(f"/v1/admin/subject-keys/{subject}/audit", headers=identity.admin)
    assert [(a["service"], a["action"], a["outcome"]) for a in audit.json()] == [
        ("support", "create", "ok"), ("mailer", "erase", "refused"), ("support", "erase", "ok"),
        ("mailer", "read", "erased"), ("support", "create", "erased"),
    ]
    assert (await identity.get(f"/v1/admin/subject-keys/{subject}/audit")).status_code == 401


async def test_erasing_an_account_deletes_its_key_and_the_store_holds_only_wrapped_keys(identity, signup):
    created, email, session = await signup()
    made = (await identity.post(f"/internal/v1/subject-keys/{created['id']}", headers=as_service("support"))).json()
    conn = await asyncpg.connect(identity.database)
    try:
        wrapped = await conn.fetchval("SELECT wrapped_key FROM data_keys WHERE subject_id = $1", created["id"])
        assert wrapped and base64.urlsafe_b64decode(made["key"] + "==") not in wrapped
        erased = await identity.delete("/v1/users/me", headers={"Authorization": f"Bearer {session['access_token']}"})
        assert erased.status_code == 202
        assert await conn.fetchval("SELECT count(*) FROM data_keys WHERE subject_id = $1", created["id"]) == 0
        audit_text = await conn.fetchval("SELECT string_agg(t::text, ' ') FROM data_key_audit t WHERE subject_id = $1",
                                         created["id"])
        assert email not in audit_text and made["key"] not in audit_text
    finally:
        await conn.close()
    gone = await identity.get(f"/internal/v1/subject-keys/{created['id']}/{made['key_id']}",
                              headers=as_service("mailer"))
    assert gone.status_code == 410
