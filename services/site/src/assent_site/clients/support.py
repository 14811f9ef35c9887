"""support: the contact form, the author's thread, the admin inbox and feedback counts."""

from datetime import date
from typing import Any

from assent_site.clients.base import Upstream


def _forwarded(client: str | None) -> dict[str, str]:
    # Support rate-limits per client: it must see the visitor's address, not the Site's.
    return {"X-Forwarded-For": client} if client else {}


class SupportClient(Upstream):
    name = "support"

    async def submit(self, inquiry: dict[str, Any], token: str | None, client: str | None) -> dict:
        return await self.json("POST", "/v1/inquiries", json=inquiry, token=token, headers=_forwarded(client))

    async def thread(self, inquiry_id: str, reply_token: str | None, token: str | None) -> dict:
        params = {"token": reply_token} if reply_token else {}
        return await self.json("GET", f"/v1/inquiries/{inquiry_id}", params=params, token=token)

    async def answer(self, inquiry_id: str, message: str, reply_token: str | None, token: str | None,
                     client: str | None) -> dict:
        body: dict[str, Any] = {"message": message}
        if reply_token:
            body["token"] = reply_token
        return await self.json("POST", f"/v1/inquiries/{inquiry_id}/messages", json=body, token=token,
                               headers=_forwarded(client))

    async def threads_of(self, user_id: str, token: str) -> list[dict]:
        return await self.every_page(f"/v1/users/{user_id}/inquiries", token=token)

    async def inbox(self, status: str | None, topic: str | None, cursor: str | None) -> tuple[list[dict], str | None]:
        params = {k: v for k, v in (("status", status), ("topic", topic), ("cursor", cursor)) if v}
        return await self.one_page("/v1/admin/inquiries", params=params, admin=True)

    async def admin_thread(self, inquiry_id: str) -> dict:
        return await self.json("GET", f"/v1/admin/inquiries/{inquiry_id}", admin=True)

    async def reply(self, inquiry_id: str, body: str) -> dict:
        return await self.json("POST", f"/v1/admin/inquiries/{inquiry_id}/replies", json={"body": body}, admin=True)

    async def close(self, inquiry_id: str) -> dict:
        return await self.json("POST", f"/v1/admin/inquiries/{inquiry_id}/close", admin=True)

    async def feedback(self, first: date, last: date, bucket: str) -> list[dict]:
        return await self.json("GET", "/v1/admin/feedback", admin=True,
                               params={"from": first.isoformat(), "to": last.isoformat(), "bucket": bucket})

    async def erase_by_address(self, email: str) -> int:
        """Every anonymous inquiry sent from the address goes (a person without an account asked us)."""
        return (await self.json("POST", "/v1/admin/erasures", json={"email": email}, admin=True))["erased"]
