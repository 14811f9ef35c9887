"""policy: versions, diffs, the main-page notice and continued-use acceptance."""

from typing import Any

from assent_site.clients.base import Upstream


class PolicyClient(Upstream):
    name = "policy"

    async def notice(self) -> dict | None:
        response = await self.call("GET", "/v1/notice")
        return response.json() if response.status_code == 200 else None

    async def current(self, policy_id: str) -> dict:
        return await self.json("GET", f"/v1/policies/{policy_id}/current")

    async def versions(self, policy_id: str) -> list[dict]:
        return await self.every_page(f"/v1/policies/{policy_id}/versions")

    async def version(self, policy_id: str, version: int) -> dict:
        return await self.json("GET", f"/v1/policies/{policy_id}/versions/{version}")

    async def diff(self, policy_id: str, first: int, last: int) -> dict:
        return await self.json("GET", f"/v1/policies/{policy_id}/diff", params={"from": first, "to": last})

    async def publish(self, policy_id: str, version: dict[str, Any]) -> dict:
        return await self.json("POST", f"/v1/policies/{policy_id}/versions", json=version, admin=True)

    async def record_activity(self, token: str) -> dict:
        return await self.json("POST", "/v1/activity", token=token)
