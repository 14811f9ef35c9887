"""Time to recover: from the fault, how long until new work of every kind goes through end to end
again. A canary registration reaches its mail and its policy acceptance, a canary grant reaches the
processor, a canary hit reaches the rollups; each step is retried while its service is down."""

import asyncio
import time
from dataclasses import dataclass, field

import asyncpg
import httpx

from assent_devtools.testing.helpers import unique
from bench.load import PASSWORD
from chaos.audit import MailSink

CANARY_SITE = "chaos-canary"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


class NotYet(Exception):
    pass


@dataclass
class Canary:
    stack: object
    sink: MailSink
    processor: object
    processor_id: str
    subject: str = ""
    token: str = ""
    purpose: str = "surveys"
    hits: int = 0
    users: dict[str, str] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # seconds from the fault to each step of the last probe

    async def sign_in(self, client: httpx.AsyncClient) -> None:
        if not self.subject:
            email = f"{unique('canary-')}@example.com"
            created = await client.post(f"{self._url('identity')}/v1/users", json={"email": email, "password": PASSWORD})
            created.raise_for_status()
            self.subject, self.email = created.json()["id"], email
        login = await client.post(f"{self._url('identity')}/v1/sessions",
                                  json={"email": self.email, "password": PASSWORD})
        login.raise_for_status()
        self.token = login.json()["access_token"]

    def _url(self, name: str) -> str:
        return self.stack.urls[name][0]

    async def reset(self, client: httpx.AsyncClient) -> None:
        """Before a fault: the canary's consent is withdrawn, so the probe's grant is a real change."""
        await self._put(client, False)

    async def _put(self, client: httpx.AsyncClient, granted: bool) -> httpx.Response:
        return await client.put(
            f"{self._url('consent')}/v1/subjects/{self.subject}/consents/{self.purpose}/{self.processor_id}",
            json={"granted": granted}, headers={"Authorization": f"Bearer {self.token}"})

    async def _step(self, attempt, deadline: float):
        while True:
            try:
                return await attempt()
            except (httpx.HTTPError, asyncpg.PostgresError, OSError, NotYet, asyncpg.InterfaceError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)

    async def probe(self, t0: float, deadline: float) -> None:
        self.steps.clear()

        def done(step: str) -> None:
            self.steps.setdefault(step, round(time.monotonic() - t0, 2))

        async with httpx.AsyncClient(timeout=5) as client:
            async def register():
                email = f"{unique('canary-')}@example.com"
                answer = await client.post(f"{self._url('identity')}/v1/users",
                                           json={"email": email, "password": PASSWORD})
                if answer.status_code != 201:
                    raise NotYet(answer.status_code)
                self.users[answer.json()["id"]] = email
                return answer.json()["id"], email

            async def grant():
                answer = await self._put(client, True)
                if answer.status_code != 200:
                    raise NotYet(answer.status_code)
                event_id = answer.json().get("event_id")
                if event_id is None:  # an earlier attempt committed before its answer was lost
                    await self._put(client, False)
                    raise NotYet("no change")
                return event_id

            async def hit():
                answer = await client.post(f"{self._url('telemetry')}/v1/collect",
                                           json={"site_id": CANARY_SITE, "url": "https://canary.example/"},
                                           headers={"User-Agent": UA})
                if answer.status_code != 202:
                    raise NotYet(answer.status_code)
                self.hits += 1

            user_id, email = await self._step(register, deadline)
            done("registered")
            event_id = await self._step(grant, deadline)
            done("granted")
            await self._step(hit, deadline)
            done("hit")

            async def through():
                if not any(to == email for to, _, _ in self.sink.mails()):
                    raise NotYet("mail")
                done("mailed")
                if not any(d["consent_event_id"] == event_id for d in list(self.processor.accepted)):
                    raise NotYet("processor")
                done("shared")
                policy = await asyncpg.connect(self.stack.database("policy"))
                telemetry = await asyncpg.connect(self.stack.database("telemetry"))
                try:
                    if not await policy.fetchval("SELECT 1 FROM acceptances WHERE user_id = $1::uuid", user_id):
                        raise NotYet("acceptance")
                    rolled = await telemetry.fetchval(
                        "SELECT coalesce(sum(hits), 0) FROM hit_rollups WHERE site_id = $1 AND dimension = 'total'",
                        CANARY_SITE)
                    if rolled < self.hits:
                        raise NotYet("rollup")
                finally:
                    await policy.close()
                    await telemetry.close()

            await self._step(through, deadline)
            done("through")


async def time_to_recover(canary: Canary, t0: float, timeout: float) -> float | None:
    try:
        await canary.probe(t0, time.monotonic() + timeout)
    except (httpx.HTTPError, asyncpg.PostgresError, OSError, NotYet, asyncpg.InterfaceError):
        return None
    return time.monotonic() - t0
