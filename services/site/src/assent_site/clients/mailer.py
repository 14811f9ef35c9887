"""mailer: unsubscribe, processors and delivery evidence."""

from assent_site.clients.base import Upstream


class MailerClient(Upstream):
    name = "mailer"

    async def unsubscribe(self, token: str) -> None:
        await self.call("POST", "/v1/unsubscribe", params={"token": token})

    async def register_processor(self, processor_id: str, name: str, endpoint_url: str, purposes: list[str],
                                 signing_secret: str) -> dict:
        body = {"name": name, "endpoint_url": endpoint_url, "purposes": purposes, "signing_secret": signing_secret}
        return await self.json("PUT", f"/v1/processors/{processor_id}", json=body, admin=True)

    async def deliveries(self, subject_id: str, token: str | None = None) -> list[dict]:
        return await self.every_page(f"/v1/subjects/{subject_id}/deliveries", token=token, admin=token is None)
