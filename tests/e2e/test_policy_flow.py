"""Issue 6 on the running system: a policy change is announced, and continued use accepts it once."""

import json

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic
from tests.e2e.conftest import acceptances


async def test_publish_notice_and_continued_use_accepted_exactly_once(system):
    user_id, headers = await system.register(f"{unique('p')}@example.com")
    async with system.client("policy") as policy:
        await eventually(lambda: acceptances(policy, user_id, headers))
        published = await policy.post("/v1/policies/privacy/versions", headers=system.admin, json={
            "title": "Privacy policy", "summary": "We now name our survey provider.", "material": True,
            "text": "# Privacy policy\n\nWe share data with a survey provider only with your permission.\n"})
        assert published.status_code == 201, published.text
        version = published.json()["version"]

        async def announced():
            records = await read_topic(system.kafka, system.topic("policy.policies.v1"))
            return [(m, r) for m, r in records if m.type == "PolicyUpdated" and json.loads(r.value)["version"] == version]

        [(meta, record)] = await eventually(announced)
        assert meta.source == "/assent/policy" and dict(record.headers)["ce_specversion"] == b"1.0"
        assert record.key == b"privacy"

        notice = await policy.get("/v1/notice")
        assert notice.status_code == 200 and notice.json()["version"] == version
        assert (await policy.get("/v1/notice", headers={"If-None-Match": notice.headers["etag"]})).status_code == 304

        first = await policy.post("/v1/activity", headers=headers)
        assert first.status_code == 200 and first.json()["recorded"]["how"] == "continued_use"
        again = await policy.post("/v1/activity", headers=headers)
        assert again.status_code == 200 and again.json()["recorded"] is None
        accepted = await acceptances(policy, user_id, headers)
        assert [(a["how"], a["version"]) for a in accepted if a["version"] == version] == [("continued_use", version)]

        change = await policy.put(f"/v1/policies/privacy/versions/{version}", headers=system.admin, json={"title": "x"})
        assert change.status_code == 405 and change.headers["content-type"] == "application/problem+json"

    # Identity stamps the version now in force on each new registration.
    async def stamped():
        new_id, _ = await system.register(f"{unique('q')}@example.com")
        records = await read_topic(system.kafka, system.topic("identity.users.v1"))
        [value] = [json.loads(r.value) for m, r in records if m.subject == new_id and m.type == "UserRegisteredV2"]
        return value["policy_version"] == version

    await eventually(stamped, timeout=20)

