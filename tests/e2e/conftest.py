"""The running system for end-to-end tests: the five services and the Site as processes on the run's Kafka and PostgreSQL."""

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord, TopicPartition
from argon2 import PasswordHasher

from assent_shared.cloudevents import EventMeta

from assent_devtools.devstack import environments, services
from assent_devtools.devstack.smtp_sink import SmtpSink
from assent_devtools.testing.helpers import eventually, free_port, unique
from assent_devtools.testing.topics import read_topic

ADMIN_TOKEN = "e2e-admin-token-" + "x" * 32
CONSOLE_PASSWORD = "e2e-console-password"
BOUNCE_SECRET = "e2e-bounce-secret-" + "r" * 32
MAX_DELIVERY_ATTEMPTS = 5  # above the flaky processors' 3 failures, so they still get their delivery


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class System:
    kafka: str
    prefix: str
    sink: SmtpSink
    logs: Path
    urls: dict[str, str] = field(default_factory=dict)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def topic(self, name: str) -> str:
        return self.prefix + name

    def client(self, service: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.urls[service], timeout=10)

    def start(self, name: str, **overrides: str) -> None:
        spec = next(s for s in (*services.SERVICES, services.SITE) if s.name == name)
        port = int(self.urls[name].rsplit(":", 1)[1])
        log = self.logs / f"{name}.log"
        process = services.start_service(spec, port, {**self.envs[name], **overrides}, log)
        self.processes[name] = process
        services.wait_ready(self.urls[name], process, log)

    async def register(self, email: str, password: str = "correct horse battery",
                       verify: bool = True) -> tuple[str, dict[str, str]]:
        """A new user's id and the headers of their signed-in requests; `verify` uses the mailed link, which
        is when the signup's newsletter opt-in takes effect."""
        async with self.client("identity") as identity:
            created = await identity.post("/v1/users", json={"email": email, "password": password})
            assert created.status_code == 201, created.text
            login = await identity.post("/v1/sessions", json={"email": email, "password": password})
            assert login.status_code == 200, login.text
        if verify:
            await self.verify(email)
        return created.json()["id"], {"Authorization": f"Bearer {login.json()['access_token']}"}

    async def mailed_token(self, email: str, page: str, count: int = 1) -> str:
        """The token of the newest link to the Site's `/<page>?token=` mailed to `email`, once `count` have come."""
        pattern = re.compile(rf"/{page}\?token=([A-Za-z0-9_.-]+)")

        def tokens() -> list[str] | None:
            found = [m for m in self.sink.messages() if m["To"] == email]
            matched = [t for m in found for t in pattern.findall(m.get_body(("plain",)).get_content())]
            return matched if len(matched) >= count else None

        return (await eventually(tokens))[-1]

    async def verify(self, email: str, headers: dict[str, str] | None = None) -> None:
        token = await self.mailed_token(email, "verify")
        async with self.client("identity") as identity:
            confirmed = await identity.post("/v1/email-verifications/confirm", json={"token": token},
                                            headers=headers or {})
            assert confirmed.status_code == 204, confirmed.text

    async def newsletter_reaching(self, email: str) -> EmailMessage:
        """An issue of the newsletter, sent again until it reaches `email` (the grant reaches the mailer by
        Kafka); the mail."""
        issue = unique("issue-")
        async with self.client("mailer") as mailer:
            async def mailed():
                await mailer.post("/v1/newsletters", headers=self.admin,
                                  json={"issue_id": issue, "title": f"News {issue}", "body": "Hello"})
                return [m for m in self.sink.messages() if m["To"] == email and issue in m["Subject"]]

            [mail] = await eventually(mailed)
        return mail

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks run, as when a node dies."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def system(infra, tmp_path_factory) -> Iterator[System]:
    import asyncio

    from assent_devtools.devstack.postgres_server import ensure_database

    root = tmp_path_factory.mktemp("e2e")
    sink = SmtpSink(root / "mail", free_port()).start()
    system = System(kafka=infra.kafka_bootstrap, prefix=unique("e2e-") + ".", sink=sink, logs=root / "logs")
    for spec in (*services.SERVICES, services.SITE):
        system.urls[spec.name] = f"http://127.0.0.1:{free_port()}"
    databases = {spec.name: asyncio.run(ensure_database(infra.postgres_admin_url, unique(f"e2e_{spec.name}_")))
                 for spec in services.SERVICES}
    system.envs = environments.build(
        environment="test", kafka=infra.kafka_bootstrap, databases=databases, urls=system.urls,
        smtp_port=sink.port, admin_token=ADMIN_TOKEN, topic_prefix=system.prefix,
        settings={
            **environments.QUICK,
            "ASSENT_MAX_DELIVERY_ATTEMPTS": str(MAX_DELIVERY_ATTEMPTS),
            "ASSENT_BOUNCE_SECRET": BOUNCE_SECRET,
            "ASSENT_LOG_LEVEL": os.environ.get("ASSENT_E2E_LOG_LEVEL", "INFO"),
            # RFC 8058 wants an HTTPS link; the tests follow it over plain HTTP on loopback.
            "ASSENT_PUBLIC_URL": system.urls["mailer"].replace("http://", "https://"),
            "ASSENT_KEY_CACHE_SECONDS": "2",
        },
        site={"ASSENT_SITE_ADMIN_PASSWORD_HASH": PasswordHasher().hash(CONSOLE_PASSWORD)},
    )
    for name in ("telemetry", "support", "identity", "site"):
        # Their clients "come from" the addresses tests put in X-Forwarded-For, so a search can look for
        # them; at identity, schemathesis's failed logins then throttle no other test; the Site passes a
        # browser test's address on to the services' per-client limits, so one test's tries limit no other.
        system.envs[name]["ASSENT_TRUST_FORWARDED_FOR"] = "true"
    try:
        for spec in services.SERVICES:
            port = int(system.urls[spec.name].rsplit(":", 1)[1])
            system.processes[spec.name] = services.start_service(
                spec, port, system.envs[spec.name], system.logs / f"{spec.name}.log")
        for spec in services.SERVICES:
            services.wait_ready(system.urls[spec.name], system.processes[spec.name],
                                system.logs / f"{spec.name}.log")
        system.start("site")
        yield system
    finally:
        services.stop_all(list(system.processes.values()))
        sink.stop()


async def find_text(database_url: str, needle: str) -> list[str]:
    """Every `table.column` of a database whose text holds `needle` (case-insensitive)."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')"""
        )
        found = []
        for column in columns:
            query = f'SELECT count(*) FROM "{column["table_name"]}" WHERE "{column["column_name"]}"::text ILIKE $1'
            if await conn.fetchval(query, f"%{needle}%"):
                found.append(f"{column['table_name']}.{column['column_name']}")
        return found
    finally:
        await conn.close()


async def acceptances(policy: httpx.AsyncClient, user_id: str, headers: dict[str, str]) -> list[dict] | None:
    """The user's policy acceptances, or None while policy does not answer 200."""
    response = await policy.get(f"/v1/users/{user_id}/acceptances", headers=headers)
    return response.json() if response.status_code == 200 else None


async def consumed(system: System, service: str, topic: str, match: Callable[[EventMeta], bool]) -> None:
    """Wait until a record on `topic` matches and `service`'s consumer group has committed past the last
    one that does: by then the service has applied it and everything before it on its partition, so
    a check that something did *not* happen looks at a settled state (offsets commit after the inbox)."""
    async def last_match() -> ConsumerRecord | None:
        records = await read_topic(system.kafka, system.topic(topic))
        return next((r for m, r in reversed(records) if match(m)), None)

    record = await eventually(last_match, timeout=30)
    partition = TopicPartition(record.topic, record.partition)
    admin = AIOKafkaAdminClient(bootstrap_servers=system.kafka)
    await admin.start()
    try:
        async def committed_past() -> bool:
            offsets = await admin.list_consumer_group_offsets(f"assent-{service}", partitions=[partition])
            return partition in offsets and offsets[partition].offset > record.offset

        await eventually(committed_past, timeout=30)
    finally:
        await admin.close()


async def applied(system: System, service: str, event_id: str) -> bool:
    """Whether `service` has applied the event (its inbox holds the id)."""
    import asyncpg

    conn = await asyncpg.connect(system.envs[service]["DATABASE_URL"])
    try:
        return bool(await conn.fetchval("SELECT 1 FROM inbox WHERE event_id = $1", event_id))
    finally:
        await conn.close()


# ------------------------------------------------------------------ the browser (Debian's chromium)

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def ensure_chromium() -> str:
    """Debian's chromium, installed when missing: no browser build can be downloaded here."""
    if not CHROMIUM.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env, stdout=subprocess.DEVNULL)
    return str(CHROMIUM)


@pytest.fixture(scope="session")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=ensure_chromium())
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def visitor(browser, system):
    """A fresh browser profile (no cookies) on the Site."""
    context = await browser.new_context(base_url=system.urls["site"])
    try:
        yield context
    finally:
        await context.close()


async def screenshot(page, name: str) -> Path:
    """Pictures of the pages for a person to look at: var/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
