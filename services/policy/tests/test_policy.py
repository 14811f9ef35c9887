"""Policy on real PostgreSQL and Kafka: seeding, publishing, the notice, schedules, acceptances."""

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from assent_shared.events import UserErased, UserRegistered
from assent_devtools.testing.helpers import eventually

POLICIES = "policy.policies.v1"
ACCEPTANCES = "policy.acceptances.v1"
PROBLEM = "application/problem+json"


def distinct(events: list) -> list[dict]:
    """Event data once per `ce_id`: delivery is at least once (a relay stopped between publishing
    and marking its rows publishes them again), consumers drop what they saw."""
    seen: dict[str, dict] = {}
    for meta, _record, data in events:
        seen.setdefault(meta.id, data)
    return list(seen.values())


def version_body(**fields: object) -> dict:
    return {"title": "Privacy policy", "summary": "Surveys by Acme.", "text": "# Privacy\n\nWe never sell data.\n",
            "material": True, **fields}


async def test_replicas_starting_together_seed_version_one_and_announce_it_once(deployment):
    d = await deployment()
    async with d.replicas(2) as clients:
        for client in clients:
            response = await client.get("/v1/policies/privacy/current")
            assert response.status_code == 200, response.text
            current = response.json()
            assert current["version"] == 1 and current["status"] == "in_force"
            assert "never sell, trade or rent" in " ".join(current["text"].split())
        assert current["data_use"] == [{"purpose": "newsletter", "processor": "first_party", "data": ["email"]}]
        updates = await eventually(lambda: d.events(POLICIES, "PolicyUpdated"))
        [data] = distinct(updates)
        meta, record, _ = updates[0]
    assert (meta.type, meta.source, record.key) == ("PolicyUpdated", "/assent/policy", b"privacy")
    assert meta.id and dict(record.headers)["ce_specversion"] == b"1.0"
    assert data["version"] == 1 and data["policy_id"] == "privacy"
    assert await d.fetchval("SELECT count(*) FROM policy_versions") == 1


async def test_publish_shows_the_notice_and_next_activity_accepts_by_continued_use_once(deployment, issuer):
    d = await deployment()
    user, other = uuid4(), uuid4()
    async with d.app() as client:
        quiet = await client.get("/v1/notice")
        assert quiet.status_code == 204 and "max-age" in quiet.headers["cache-control"]
        assert (await client.post("/v1/activity", headers=issuer.auth(user))).json()["recorded"]["version"] == 1

        acme = {"purpose": "surveys", "processor": "acme", "data": ["email"]}
        published = await client.post("/v1/policies/privacy/versions", headers=d.admin,
                                      json=version_body(data_use=[acme]))
        assert published.status_code == 201, published.text
        assert published.json()["version"] == 2 and published.json()["status"] == "in_force"
        updates = await eventually(lambda: d.events(POLICIES, "PolicyUpdated"))
        assert [u["version"] for u in distinct(updates)] == [1, 2]
        assert {meta.source for meta, _, _ in updates} == {"/assent/policy"} and distinct(updates)[1]["material"]
        assert (await client.get("/v1/policies/privacy/current")).json()["version"] == 2

        notice = await client.get("/v1/notice")
        assert notice.status_code == 200
        assert notice.json()["version"] == 2 and notice.json()["summary"] == "Surveys by Acme."
        assert notice.json()["url"] == "/v1/policies/privacy/versions/2"
        assert "max-age" in notice.headers["cache-control"]
        cached = await client.get("/v1/notice", headers={"If-None-Match": notice.headers["etag"]})
        assert cached.status_code == 304 and cached.headers["etag"] == notice.headers["etag"]

        first = await client.post("/v1/activity", headers=issuer.auth(user))
        assert first.status_code == 200
        assert first.json()["recorded"]["how"] == "continued_use" and first.json()["recorded"]["version"] == 2
        again = await client.post("/v1/activity", headers=issuer.auth(user))
        assert again.json() == {"policy_id": "privacy", "version": 2, "recorded": None}

        accepted = await eventually(lambda: d.events(ACCEPTANCES, "PolicyAccepted"))
        assert [(a["version"], a["how"]) for a in distinct(accepted)] == [(1, "continued_use"), (2, "continued_use")]
        assert {a[0].subject for a in accepted} == {str(user)} and accepted[1][1].key == str(user).encode()

        own = await client.get(f"/v1/users/{user}/acceptances", headers=issuer.auth(user))
        assert [(a["version"], a["how"]) for a in own.json()] == [(1, "continued_use"), (2, "continued_use")]
        assert (await client.get(f"/v1/users/{user}/acceptances", headers=d.admin)).json() == own.json()
        first_page = await client.get(f"/v1/users/{user}/acceptances", headers=d.admin, params={"limit": 1})
        assert first_page.json() == own.json()[:1] and 'rel="next"' in first_page.headers["link"]
        rest = await client.get(f"/v1/users/{user}/acceptances", headers=d.admin,
                                params={"limit": 1, "cursor": first_page.headers["x-next-cursor"]})
        assert rest.json() == own.json()[1:] and "link" not in rest.headers
        denied = await client.get(f"/v1/users/{user}/acceptances", headers=issuer.auth(other))
        assert denied.status_code == 403 and denied.headers["content-type"] == PROBLEM
        assert (await client.get(f"/v1/users/{user}/acceptances")).status_code == 401

        diff = (await client.get("/v1/policies/privacy/diff", params={"from": 1, "to": 2})).json()
        assert diff["data_use_added"] == [acme] and "+We never sell data." in diff["diff"].splitlines()
        listed = (await client.get("/v1/policies/privacy/versions")).json()
        assert [(v["version"], v["status"]) for v in listed] == [(1, "superseded"), (2, "in_force")]
        first_versions = await client.get("/v1/policies/privacy/versions", params={"limit": 1})
        assert first_versions.json() == listed[:1] and 'rel="next"' in first_versions.headers["link"]
        later = await client.get("/v1/policies/privacy/versions",
                                 params={"limit": 1, "cursor": first_versions.headers["x-next-cursor"]})
        assert later.json() == listed[1:] and "x-next-cursor" not in later.headers
        forged = await client.get("/v1/policies/privacy/versions", params={"cursor": "WyJ4Il0"})  # ["x"]
        assert forged.status_code == 422 and forged.json()["title"] == "Invalid cursor"


async def test_scheduled_version_takes_effect_on_time_across_a_restart(deployment):
    d = await deployment()
    async with d.app() as client:
        effective = datetime.now(UTC) + timedelta(seconds=3)
        scheduled = await client.post("/v1/policies/privacy/versions", headers=d.admin,
                                      json=version_body(effective_at=effective.isoformat()))
        assert scheduled.status_code == 201 and scheduled.json()["status"] == "scheduled"
        assert (await client.get("/v1/policies/privacy/current")).json()["version"] == 1
        assert (await client.get("/v1/notice")).status_code == 204
    assert datetime.now(UTC) < effective, "the first app must stop while the version is pending"

    async with d.replicas(2) as (first, second):
        async def in_force() -> dict:
            current = (await second.get("/v1/policies/privacy/current")).json()
            assert current["version"] == 2
            return current

        current = await eventually(in_force)
        assert datetime.now(UTC) - effective < timedelta(seconds=3)
        assert datetime.fromisoformat(current["effective_at"]) == effective
        assert await d.fetchval("SELECT in_force_since >= effective_at FROM policy_versions WHERE version = 2")
        assert (await first.get("/v1/notice")).json()["version"] == 2
        updates = await eventually(lambda: d.events(POLICIES, "PolicyUpdated"))
        assert [u["version"] for u in distinct(updates)] == [1, 2]


async def test_published_versions_cannot_change_and_bad_input_is_refused(deployment, issuer):
    d = await deployment()
    async with d.app() as client:
        original = (await client.get("/v1/policies/privacy/versions/1")).json()
        for method in ("PUT", "PATCH", "DELETE"):
            response = await client.request(method, "/v1/policies/privacy/versions/1", json=version_body())
            assert response.status_code == 405, method
            assert response.headers["content-type"] == PROBLEM and response.headers["allow"] == "GET"
            assert response.json()["title"] == "Published versions are immutable"
        overwrite = await client.post("/v1/policies/privacy/versions", headers=d.admin, json=version_body(version=1))
        assert overwrite.status_code == 409 and "cannot change" in overwrite.json()["detail"]
        assert (await client.get("/v1/policies/privacy/versions/1")).json() == original

        path = "/v1/policies/privacy/versions"
        assert (await client.post(path, json=version_body())).status_code == 401
        assert (await client.post(path, headers=issuer.auth(uuid4()), json=version_body())).status_code == 403
        for bad in (version_body(title=" "), version_body(text="nul\x00"), version_body(extra=1),
                    version_body(title="Two\nlines"), version_body(summary="bell\x07"),
                    version_body(effective_at="2031-01-01T00:00:00"),
                    version_body(effective_at=(datetime.now(UTC) - timedelta(days=1)).isoformat()),
                    version_body(data_use=[{"purpose": "x", "processor": "a"}, {"purpose": "x", "processor": "a"}]),
                    version_body(data_use=[{"purpose": "Not A Slug", "processor": "a"}])):
            response = await client.post(path, headers=d.admin, json=bad)
            assert response.status_code == 422, bad
            assert response.headers["content-type"] == PROBLEM
        surrogate = json.dumps(version_body(title="lone \ud800 surrogate"))  # ASCII escapes: sendable as JSON
        refused = await client.post(path, headers={**d.admin, "content-type": "application/json"}, content=surrogate)
        assert refused.status_code == 422, refused.text
        assert (await client.post("/v1/policies/NO!/versions", headers=d.admin, json=version_body())).status_code == 422

        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await client.post(path, headers=d.admin, json=version_body(effective_at=later))).status_code == 201
        too_early = await client.post(path, headers=d.admin, json=version_body())
        assert too_early.status_code == 409 and "cannot take effect before" in too_early.json()["detail"]

        assert (await client.get("/v1/policies/privacy/versions/99")).status_code == 404
        assert (await client.get("/v1/policies/privacy/versions/99999999999")).status_code == 422
        assert (await client.get("/v1/policies/privacy/diff", params={"from": 1, "to": 99})).status_code == 404
        assert (await client.get("/v1/policies/terms/current")).status_code == 404
        assert await d.fetchval("SELECT count(*) FROM policy_versions") == 2


async def test_signup_explicit_acceptance_and_erasure(deployment, issuer):
    d = await deployment()
    user, marker = uuid4(), uuid4()
    async with d.app() as client:
        def registered(user_id):
            return UserRegistered(user_id=user_id, email="someone@example.com", registered_at=datetime.now(UTC),
                                  policy_version=1, newsletter_opt_in=True)

        signup = registered(user)
        meta = await d.publish(signup)
        await d.publish(signup, meta)  # a redelivery: same ce_id
        await d.publish(registered(marker))

        async def acceptances_of(user_id):
            response = await client.get(f"/v1/users/{user_id}/acceptances", headers=d.admin)
            assert response.status_code == 200
            return response.json()

        await eventually(lambda: acceptances_of(marker))
        [signed_up] = await acceptances_of(user)
        assert (signed_up["version"], signed_up["how"]) == (1, "signup")
        accepted = await eventually(lambda: d.events(ACCEPTANCES, "PolicyAccepted"))
        assert sorted((a["user_id"], a["how"]) for a in distinct(accepted)) == sorted(
            [(str(user), "signup"), (str(marker), "signup")])
        activity = await client.post("/v1/activity", headers=issuer.auth(user))
        assert activity.json()["recorded"] is None

        path = "/v1/policies/privacy/acceptances"
        explicit = await client.post(path, headers=issuer.auth(user), json={"version": 1})
        assert explicit.status_code == 201 and explicit.json()["how"] == "explicit"
        repeated = await client.post(path, headers=issuer.auth(user), json={"version": 1})
        assert repeated.status_code == 200 and repeated.json() == explicit.json()
        assert (await client.post(path, headers=issuer.auth(user), json={"version": 5})).status_code == 404
        assert (await client.post(path, headers=d.admin, json={"version": 1})).status_code == 403
        assert (await client.post(path, json={"version": 1})).status_code == 401
        forged = await client.post(path, headers={"Authorization": "Bearer not.a.token"}, json={"version": 1})
        assert forged.status_code == 401 and forged.headers["content-type"] == PROBLEM

        await d.publish(UserErased(user_id=user, erased_at=datetime.now(UTC)))

        async def erased():
            assert await acceptances_of(user) == []
            return True

        await eventually(erased)
        assert len(await acceptances_of(marker)) == 1
