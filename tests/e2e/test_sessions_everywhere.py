"""Ending a session at identity ends it at every service, within the revocation event's trip."""

from uuid import UUID

from assent_devtools.testing.helpers import eventually, unique


async def _status(system, service: str, path: str, headers: dict[str, str]) -> int:
    async with system.client(service) as client:
        return (await client.get(path, headers=headers)).status_code


async def test_logout_and_disable_are_refused_at_consent_mailer_and_policy(system):
    user_id, signed_in = await system.register(f"{unique('sess')}@example.com")
    paths = {"consent": f"/v1/subjects/{user_id}/consents", "mailer": f"/v1/subjects/{user_id}/deliveries",
             "policy": f"/v1/users/{user_id}/acceptances"}
    for service, path in paths.items():
        assert await _status(system, service, path, signed_in) == 200, service
    async with system.client("identity") as identity:
        assert (await identity.delete("/v1/sessions/current", headers=signed_in)).status_code == 204

    async def refused_everywhere():
        return all([await _status(system, s, p, signed_in) == 401 for s, p in paths.items()])

    await eventually(refused_everywhere, timeout=20)


async def test_a_disabled_account_is_refused_at_every_service(system):
    email = f"{unique('dis')}@example.com"
    user_id, signed_in = await system.register(email)
    path = f"/v1/subjects/{user_id}/consents"
    assert await _status(system, "consent", path, signed_in) == 200
    async with system.client("identity") as identity:
        disabled = await identity.post(f"/v1/admin/users/{UUID(user_id)}/disable", headers=system.admin)
        assert disabled.status_code in (200, 204), disabled.text

    async def refused():
        return await _status(system, "consent", path, signed_in) == 401 and \
            await _status(system, "policy", f"/v1/users/{user_id}/acceptances", signed_in) == 401

    await eventually(refused, timeout=20)
