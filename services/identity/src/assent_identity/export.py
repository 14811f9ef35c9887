"""Gathers what every service holds about a user into one document, asking each with the user's own token."""

import asyncio
from datetime import UTC, datetime

import httpx

from assent_identity.domain import User
from assent_identity.settings import IdentitySettings
from assent_shared import pages

_MAX_PAGES = 1000


class Exporter:
    def __init__(self, client: httpx.AsyncClient, settings: IdentitySettings) -> None:
        self._client = client
        self._sources = {
            "consents": f"{settings.consent_url}/v1/subjects/{{id}}/consents/history",
            "deliveries": f"{settings.mailer_url}/v1/subjects/{{id}}/deliveries",
            "policy_acceptances": f"{settings.policy_url}/v1/users/{{id}}/acceptances",
            "inquiries": f"{settings.support_url}/v1/users/{{id}}/inquiries",
        }

    async def export(self, user: User, token: str) -> dict:
        names = list(self._sources)
        results = await asyncio.gather(*(self._fetch(self._sources[n].format(id=user.id), token) for n in names))
        document: dict = {
            "generated_at": datetime.now(UTC).isoformat(),
            "identity": {"id": str(user.id), "email": user.email, "display_name": user.display_name,
                         "created_at": user.created_at.isoformat()},
            "telemetry": "Telemetry keeps no data linked to a person.",
        }
        document.update(dict(zip(names, results, strict=True)))
        document["incomplete"] = [n for n, r in zip(names, results, strict=True) if r is None]
        return document

    async def _fetch(self, url: str, token: str) -> list | dict | None:
        """The whole list, page after page (each names the next in `X-Next-Cursor`); None when a
        service does not answer, so the export says it is incomplete rather than cut short."""
        gathered: list = []
        params: dict[str, str | int] = {"limit": pages.MAX_LIMIT}
        for _ in range(_MAX_PAGES):
            try:
                response = await self._client.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError:
                return None
            if response.status_code != 200:
                return None
            body = response.json()
            if not isinstance(body, list):
                return body
            gathered += body
            cursor = response.headers.get("x-next-cursor")
            if not cursor:
                return gathered
            params = {"limit": pages.MAX_LIMIT, "cursor": cursor}
        return None
