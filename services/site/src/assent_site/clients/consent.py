"""consent: a person's consents, their receipts, and device-scoped choices of visitors without an account."""

from assent_site.clients.base import Upstream


class ConsentClient(Upstream):
    name = "consent"

    async def consents(self, subject_id: str, token: str | None = None) -> list[dict]:
        """Read only: Global Privacy Control goes with a change (`change(..., gpc=True)`), never with a read."""
        return await self.json("GET", f"/v1/subjects/{subject_id}/consents", token=token, admin=token is None)

    async def change(self, subject_id: str, purpose: str, recipient: str, granted: bool, token: str,
                     gpc: bool = False) -> dict:
        return await self.json("PUT", f"/v1/subjects/{subject_id}/consents/{purpose}/{recipient}",
                               json={"granted": granted}, token=token, gpc=gpc)

    async def history(self, subject_id: str, token: str | None = None) -> list[dict]:
        return await self.every_page(f"/v1/subjects/{subject_id}/consents/history", token=token,
                                     admin=token is None)

    async def receipt(self, event_id: str, token: str) -> bytes:
        return (await self.call("GET", f"/v1/receipts/{event_id}", token=token)).content

    async def set_device_consent(self, device_id: str, purpose: str, granted: bool, gpc: bool) -> dict:
        return await self.json("PUT", f"/v1/devices/{device_id}/consents/{purpose}", json={"granted": granted},
                               gpc=gpc)

    async def honour_gpc(self, subject_id: str, token: str) -> list[dict]:
        """The person's browser sends GPC: every third-party grant of theirs is withdrawn."""
        return await self.json("POST", f"/v1/subjects/{subject_id}/gpc", token=token)
