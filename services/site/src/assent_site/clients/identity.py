"""identity: accounts, sessions, password reset, address verification, export and erasure."""

from typing import Any

from assent_site.clients.base import Upstream


class IdentityClient(Upstream):
    name = "identity"

    async def register(self, email: str, password: str, display_name: str | None, newsletter: bool,
                       locale: str | None) -> dict:
        body: dict[str, Any] = {"email": email, "password": password, "newsletter_opt_in": newsletter}
        if display_name:
            body["display_name"] = display_name
        if locale:
            body["locale"] = locale
        return await self.json("POST", "/v1/users", json=body)

    async def sign_in(self, email: str, password: str, client: str | None = None) -> dict:
        # Identity throttles per client: it must see the visitor's address, not the Site's.
        headers = {"X-Forwarded-For": client} if client else {}
        return await self.json("POST", "/v1/sessions", json={"email": email, "password": password}, headers=headers)

    async def refresh(self, refresh_token: str) -> dict:
        return await self.json("POST", "/v1/sessions/refresh", json={"refresh_token": refresh_token})

    async def sign_out(self, token: str) -> None:
        await self.call("DELETE", "/v1/sessions/current", token=token)

    async def me(self, token: str) -> dict:
        return await self.json("GET", "/v1/users/me", token=token)

    async def export(self, token: str) -> bytes:
        return (await self.call("GET", "/v1/users/me/export", token=token)).content

    async def erase(self, token: str) -> dict:
        return await self.json("DELETE", "/v1/users/me", token=token)

    async def erasure(self, user_id: str) -> dict:
        return await self.json("GET", f"/v1/erasures/{user_id}", admin=True)

    async def request_password_reset(self, email: str) -> None:
        await self.call("POST", "/v1/password-resets", json={"email": email})

    async def reset_password(self, token: str, password: str) -> None:
        await self.call("POST", "/v1/password-resets/confirm", json={"token": token, "password": password})

    async def verify_email(self, token: str) -> None:
        await self.call("POST", "/v1/email-verifications/confirm", json={"token": token})

    async def resend_verification(self, token: str) -> None:
        await self.call("POST", "/v1/users/me/email-verifications", token=token)

    async def find_user(self, email: str) -> dict:
        return await self.json("GET", "/v1/admin/users", params={"email": email}, admin=True)

    async def erasures(self, cursor: str | None) -> tuple[list[dict], str | None]:
        return await self.one_page("/v1/admin/erasures", params={"cursor": cursor} if cursor else {}, admin=True)

    async def reserve_console_attempt(self, account: str, client: str | None) -> None:
        await self.call("POST", "/v1/admin/console-attempts", json={"account": account, "client": client}, admin=True)

    async def release_console_attempt(self, account: str, client: str | None) -> None:
        await self.call("POST", "/v1/admin/console-attempts/succeeded", json={"account": account, "client": client},
                        admin=True)
