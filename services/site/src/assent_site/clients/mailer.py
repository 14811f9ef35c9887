"""mailer: unsubscribe, processors and delivery evidence, mail templates."""

from urllib.parse import unquote

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

    async def processors(self) -> list[dict]:
        return await self.every_page("/v1/admin/processors", admin=True)

    async def processor_deliveries(self, processor_id: str, cursor: str | None) -> tuple[list[dict], str | None]:
        return await self.one_page(f"/v1/admin/processors/{processor_id}/deliveries",
                                   params={"cursor": cursor} if cursor else {}, admin=True)

    async def templates(self) -> list[dict]:
        return await self.json("GET", "/v1/admin/templates", admin=True)

    async def preview(self, mail: str, locale: str, part: str) -> tuple[str, str]:
        """The mail's subject and its `html` or `text` part, rendered with sample values."""
        response = await self.call("GET", f"/v1/admin/templates/{mail}/preview",
                                   params={"locale": locale, "format": part}, admin=True)
        return unquote(response.headers.get("x-mail-subject", "")), response.text
