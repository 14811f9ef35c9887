"""What an operator relies on: traces across Kafka, graceful SIGTERM, metrics."""

import json
import os
import signal
import time
from collections import Counter

from assent_devtools.testing.helpers import eventually, unique
from assent_devtools.testing.topics import read_topic


def _log_lines(system, service):
    path = system.logs / f"{service}.log"
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


async def test_a_requests_trace_id_reaches_the_event_headers_and_the_consumers_logs(system):
    trace_id = os.urandom(16).hex()
    traceparent = f"00-{trace_id}-{os.urandom(8).hex()}-01"
    email = f"{unique('t')}@example.com"
    async with system.client("identity") as identity:
        created = await identity.post("/v1/users", headers={"traceparent": traceparent},
                                      json={"email": email, "password": "correct horse battery"})
    user_id = created.json()["id"]
    # The verification (what grants the newsletter) joins the same trace.
    await system.verify(email, headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"})

    async def event_header():
        records = await read_topic(system.kafka, system.topic("identity.users.v1"))
        return [m.traceparent for m, _ in records if m.subject == user_id and m.type == "UserRegisteredV2"]

    [carried] = await eventually(event_header)
    assert carried.split("-")[1] == trace_id

    def consumer_logged():
        return [line for line in _log_lines(system, "consent")
                if line.get("trace_id") == trace_id and line.get("message") == "event applied"]

    await eventually(consumer_logged)
    # The consent service's own event continues the same trace into the mailer.
    await eventually(lambda: [line for line in _log_lines(system, "mailer")
                              if line.get("trace_id") == trace_id and line.get("event_type") == "ConsentGranted"])


async def test_sigterm_on_a_busy_consumer_loses_and_duplicates_nothing(system):
    emails = [f"{unique('busy')}@example.com" for _ in range(30)]
    ids = []
    async with system.client("identity") as identity:
        for email in emails:
            response = await identity.post("/v1/users", json={"email": email, "password": "correct horse battery"})
            ids.append(response.json()["id"])
        tokens = [await system.mailed_token(email, "verify") for email in emails]
        for i, token in enumerate(tokens):
            # Each verification gives the consent service the signup's newsletter grant to record.
            confirmed = await identity.post("/v1/email-verifications/confirm", json={"token": token})
            assert confirmed.status_code == 204
            if i == 10:
                process = system.processes["consent"]
                process.send_signal(signal.SIGTERM)  # while it works through the registrations
                started = time.monotonic()
    process.wait(timeout=30)
    assert time.monotonic() - started < 30
    # uvicorn re-raises the signal once it has shut down gracefully, so the exit status says SIGTERM.
    assert process.returncode in (0, -signal.SIGTERM)
    assert _log_lines(system, "consent")[-1]["message"] == "service stopped"
    system.processes.pop("consent")
    system.start("consent")

    async with system.client("consent") as consent:
        for user_id in ids:
            async def granted(u=user_id):
                response = await consent.get(f"/v1/subjects/{u}/consents", headers=system.admin)
                return response.json()

            [state] = await eventually(granted, timeout=30)
            assert (state["purpose"], state["seq"]) == ("newsletter", 1)
    events = await read_topic(system.kafka, system.topic("consent.consents.v1"))
    counts = Counter(m.subject for m, _ in events if m.subject in ids)
    assert counts == {i: 1 for i in ids}


async def test_metrics_show_consumer_lag_outbox_and_mailer_figures(system):
    async with system.client("mailer") as mailer:
        async def lag_reported():
            text = (await mailer.get("/metrics")).text
            return "kafka_consumer_lag{" in text and text

        text = await eventually(lag_reported, timeout=40)
        for name in ("outbox_backlog", "outbox_oldest_age_seconds", "inbox_duplicates_dropped_total",
                     "dead_letters_total", "mailer_deliveries_waiting", "mailer_delivery_failures_total",
                     "http_request_duration_seconds_bucket"):
            assert name in text, name


async def test_no_password_token_or_email_in_any_services_logs(system):
    email, password = f"{unique('secret')}@example.com", "a very private passphrase"
    user_id, headers = await system.register(email, password)
    token = headers["Authorization"].split()[1]
    async with system.client("identity") as identity:
        await identity.post("/v1/sessions", json={"email": email, "password": "wrong " + password})
        await identity.put("/v1/users/me/email", headers=headers, json={"email": "not-an-email", "password": password})
    await eventually(lambda: [m for m in system.sink.messages() if m["To"] == email])
    await eventually(lambda: [line for line in _log_lines(system, "consent") if line.get("message") == "event applied"])
    for service in system.urls:
        text = (system.logs / f"{service}.log").read_text(errors="replace")
        for secret in (email, password, token):
            assert secret not in text, f"{service} logged a secret"
    assert user_id  # ids are pseudonymous and may appear in logs
