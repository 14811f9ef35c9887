"""telemetry: the admin statistics behind the console's charts."""

from datetime import date

from assent_site.clients.base import Upstream


class TelemetryClient(Upstream):
    name = "telemetry"

    async def stats(self, site_id: str, first: date, last: date, breakdowns: list[str]) -> dict:
        params = [("site_id", site_id), ("from", first.isoformat()), ("to", last.isoformat()), ("limit", "8"),
                  *(("breakdown", b) for b in breakdowns)]
        return await self.json("GET", "/v1/stats", params=params, admin=True)
