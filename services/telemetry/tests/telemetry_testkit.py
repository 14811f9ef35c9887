"""What the telemetry tests share: user agents, a movable clock, and a client for one running instance."""

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from fastapi import FastAPI

from assent_telemetry.settings import TelemetrySettings

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.0 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 "
        "Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
                  "Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
            "Safari/537.36")
PLAYSTATION = ("Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/13.0 Safari/605.1.15")
PARTNER_TOKEN = "partner-token-" + "p" * 32
ORIGIN = "https://demo.example"


class Clock:
    """Real time plus an offset the test moves forward, e.g. to a day that is final."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Telemetry:
    def __init__(self, client: httpx.AsyncClient, prefix: str, database_url: str, clock: Clock,
                 settings: TelemetrySettings, app: FastAPI | None = None) -> None:
        self.client = client
        self.app = app
        self.prefix = prefix
        self.database_url = database_url
        self.clock = clock
        self.settings = settings
        self.admin = {"Authorization": f"Bearer {settings.admin_token}"}

    async def hit(self, ip: str, user_agent: str, body: object, **headers: str) -> httpx.Response:
        return await self.client.post("/v1/collect", json=body,
                                      headers={"X-Forwarded-For": ip, "User-Agent": user_agent, **headers})

    async def stats(self, *breakdowns: str, site_id: str = "demo") -> dict:
        today = self.clock().date().isoformat()
        response = await self.client.get("/v1/stats", headers=self.admin, params={
            "site_id": site_id, "from": today, "to": today, "breakdown": list(breakdowns)})
        assert response.status_code == 200, response.text
        return response.json()

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()
