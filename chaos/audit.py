"""The auditor: from the topics (a Ledger), the services' tables, the mail sink and the processor's
own record, count what was lost, applied twice, or sent to a processor without a matching consent.

lost        an accepted request whose event is not on its topic; an event on a topic that a consumer
            that should apply it has not applied (not in its inbox, or its effect missing: a rollup
            short, a mail never sent, a consent view behind the consent log, an outbox row never
            published); a revoke the processor was never told of after it had received the data
duplicated an effect applied twice: a rollup above the distinct hits, two signup grants for one user,
            two delivery ids for one mail or for one consent event at the processor
ungated     a processor delivery whose consent event is not a matching grant (share) or revoke
            (revocation) of the same subject and purpose, or that arrived before that event existed
resent      the same delivery id received twice (a crash between sending and recording it): the
            receiver drops the repeat by that id, so this is at-least-once, not a duplicate
"""

import importlib
import inspect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

import asyncpg

from assent_devtools.devstack import services
from chaos.ledger import Rec

def consumers() -> dict[str, dict[str, tuple[str, ...]]]:
    """Which service must apply which event of which topic: what each service's `subscribers.register`
    subscribes with (every subscriber is made by `kafka.subscribe`), run against a recorder, so that
    this cannot fall behind the code."""
    owed: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for spec in services.SERVICES:
        module = importlib.import_module(f"{spec.factory.split('.', 1)[0]}.subscribers")
        recorder = _Recorder()
        module.register(*(recorder for _ in inspect.signature(module.register).parameters))
        for topic, event_types in recorder.subscribed:
            for event_type in event_types:
                owed[topic][event_type].append(spec.name)
    return {topic: {t: tuple(names) for t, names in by_type.items()} for topic, by_type in owed.items()}


class _Recorder:
    """Stands in for the runtime, settings, broker and handlers that `register` is given: keeps the topic
    of each subscriber and the event types it applies; every other attribute or call is itself again."""

    def __init__(self) -> None:
        self.subscribed: list[tuple[str, tuple[str, ...]]] = []

    def topic(self, name: str) -> str:  # settings.topic: the topic without a prefix
        return name

    def subscriber(self, topic: str, **_options: object):
        def keep(handle):
            self.subscribed.append((topic, handle.event_types))
            return handle
        return keep

    def __getattr__(self, _name: str) -> "_Recorder":
        return self

    def __call__(self, *_args: object, **_kwargs: object) -> "_Recorder":
        return self


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SAMPLES = 5


@dataclass
class Accepted:
    """What the clients were told was accepted during one scenario."""

    site: str
    users: dict[str, str] = field(default_factory=dict)  # user id -> email
    consent_events: set[str] = field(default_factory=set)
    hits: int = 0


@dataclass
class Findings:
    events: int = 0
    lost: Counter = field(default_factory=Counter)
    duplicated: Counter = field(default_factory=Counter)
    ungated: Counter = field(default_factory=Counter)
    resent: Counter = field(default_factory=Counter)
    republished: int = 0
    dead_letters: int = 0
    samples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def note(self, counter: Counter, reason: str, item: object, n: int = 1) -> None:
        counter[reason] += n
        if len(self.samples[reason]) < SAMPLES:
            self.samples[reason].append(str(item))

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.ungated)

    def open_items(self) -> str:
        """What keeps the findings from being clean, biggest first: `reason: count, ...`."""
        counts = self.lost + self.duplicated + self.ungated
        return ", ".join(f"{reason}: {n}" for reason, n in counts.most_common())

    def as_dict(self) -> dict:
        return {"events": self.events, "lost": sum(self.lost.values()), "duplicated": sum(self.duplicated.values()),
                "ungated": sum(self.ungated.values()), "resent": sum(self.resent.values()),
                "republished": self.republished, "dead_letters": self.dead_letters,
                "lost_by_reason": dict(self.lost), "duplicated_by_reason": dict(self.duplicated),
                "ungated_by_reason": dict(self.ungated), "resent_by_reason": dict(self.resent),
                "samples": {k: v for k, v in self.samples.items()}}


class MailSink:
    """The SMTP sink's .eml files: recipient, subject and the delivery id carried in Message-ID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: dict[str, tuple[str, str, str]] = {}
        self._parser = BytesHeaderParser()

    def mails(self) -> list[tuple[str, str, str]]:
        for path in self.folder.glob("*.eml"):
            if path.name not in self._seen:
                with path.open("rb") as f:
                    h = self._parser.parse(f)
                found = _UUID.search(str(h["Message-ID"] or ""))
                self._seen[path.name] = (str(h["To"] or ""), str(h["Subject"] or ""), found.group(0) if found else "")
        return list(self._seen.values())


async def audit(*, window: list[Rec], every: list[Rec], accepted: Accepted, databases: dict[str, str],
                sink: MailSink, deliveries: list[dict], processor_id: str, since: float) -> Findings:
    f = Findings(events=len(window))
    f.republished = sum(n - 1 for n in Counter((r.topic, r.id) for r in window).values() if n > 1)
    f.dead_letters = sum(1 for r in window if r.topic.endswith(".dead-letters.v1"))
    on_topic = {(r.topic, r.id) for r in every}
    registered = {r.subject for r in every if r.type in ("UserRegistered", "UserRegisteredV2")}
    for user_id in accepted.users:
        if user_id not in registered:
            f.note(f.lost, "registration accepted, no UserRegistered on the topic", user_id)
    for event_id in accepted.consent_events:
        if ("consent.consents.v1", event_id) not in on_topic:
            f.note(f.lost, "consent change accepted, not on the topic", event_id)
    site_hits = {r.id for r in every if r.topic == "telemetry.hits.v1" and r.payload.get("site_id") == accepted.site}
    if accepted.hits > len(site_hits):
        f.note(f.lost, "hits accepted, not on the topic", accepted.site, accepted.hits - len(site_hits))
    conns = {name: await asyncpg.connect(url) for name, url in databases.items()}
    try:
        await _inboxes(f, window, conns)
        await _effects(f, accepted, site_hits, conns, sink)
        await _processor(f, window, every, deliveries, processor_id, since, conns)
        for name, conn in conns.items():
            if n := await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                f.note(f.lost, f"{name}: outbox rows not published", n, n)
    finally:
        for conn in conns.values():
            await conn.close()
    return f


async def _inboxes(f: Findings, window: list[Rec], conns: dict[str, asyncpg.Connection]) -> None:
    owed: dict[str, set[str]] = defaultdict(set)
    consumed = consumers()
    for r in window:
        for service in consumed.get(r.topic, {}).get(r.type, ()):
            owed[service].add(r.id)
    for service, ids in owed.items():
        rows = await conns[service].fetch("SELECT event_id FROM inbox WHERE event_id = ANY($1::text[])", list(ids))
        for missing in ids - {r["event_id"] for r in rows}:
            f.note(f.lost, f"{service}: event on its topic not applied", missing)


async def _effects(f: Findings, accepted: Accepted, site_hits: set[str], conns: dict[str, asyncpg.Connection],
                   sink: MailSink) -> None:
    rolled = await conns["telemetry"].fetchval(
        "SELECT coalesce(sum(hits), 0) FROM hit_rollups WHERE site_id = $1 AND dimension = 'total'", accepted.site)
    if rolled < len(site_hits):
        f.note(f.lost, "telemetry: hits on the topic not in the rollups", accepted.site, len(site_hits) - rolled)
    if rolled > len(site_hits):
        f.note(f.duplicated, "telemetry: rollups count more than the distinct hits", accepted.site,
               rolled - len(site_hits))
    users = list(accepted.users)
    if not users:
        return
    grants = await conns["consent"].fetch(
        """SELECT subject_id::text AS s, count(*) AS n FROM consent_events
           WHERE subject_id = ANY($1::uuid[]) AND source = 'signup' GROUP BY 1""", users)
    for row in grants:
        if row["n"] > 1:
            f.note(f.duplicated, "consent: signup applied twice", row["s"], row["n"] - 1)
    signed = {r["u"] for r in await conns["policy"].fetch(
        "SELECT user_id::text AS u FROM acceptances WHERE user_id = ANY($1::uuid[]) AND how = 'signup'", users)}
    for user_id in set(users) - signed:
        f.note(f.lost, "policy: no signup acceptance", user_id)
    mails = await conns["mailer"].fetch(
        """SELECT delivery_id::text AS d, subject_id::text AS s, status FROM deliveries
           WHERE channel = 'email' AND subject_id = ANY($1::uuid[])""", users)
    by_user = defaultdict(list)
    for row in mails:
        by_user[row["s"]].append(row)
    arrived = Counter(d for _, _, d in sink.mails())
    for user_id in users:
        if not by_user[user_id]:
            f.note(f.lost, "mailer: no mail for a registered user", user_id)
        for row in by_user[user_id]:
            if row["status"] == "pending":
                f.note(f.lost, "mailer: mail still pending", row["d"])
            elif row["status"] == "sent" and not arrived[row["d"]]:
                f.note(f.lost, "mailer: mail recorded sent, never arrived", row["d"])
    emails = set(accepted.users.values())
    per_mail = defaultdict(set)
    for to, subject, delivery_id in sink.mails():
        if to in emails:
            per_mail[(to, subject)].add(delivery_id)
    for (to, subject), ids in per_mail.items():
        if len(ids) > 1:
            f.note(f.duplicated, "the same mail under two delivery ids", subject, len(ids) - 1)
        for d in ids:
            if arrived[d] > 1:
                f.note(f.resent, "mail with the same delivery id again", d, arrived[d] - 1)


async def _processor(f: Findings, window: list[Rec], every: list[Rec], deliveries: list[dict], processor_id: str,
                     since: float, conns: dict[str, asyncpg.Connection]) -> None:
    consents = {r.id: r for r in every if r.topic == "consent.consents.v1"
                and r.payload.get("recipient") == processor_id}
    mine = {r.id for r in window if r.id in consents}
    # The mailer's view must have caught up with the consent log for every key this scenario touched.
    state = {(r["s"], r["p"]): r["seq"] for r in await conns["consent"].fetch(
        "SELECT subject_id::text AS s, purpose AS p, seq FROM consent_state WHERE recipient = $1", processor_id)}
    view = {(r["s"], r["p"]): r["seq"] for r in await conns["mailer"].fetch(
        "SELECT subject_id::text AS s, purpose AS p, seq FROM consent_view WHERE recipient = $1", processor_id)}
    for key in {(str(consents[i].payload["subject_id"]), consents[i].payload["purpose"]) for i in mine}:
        if view.get(key, 0) < state.get(key, 0):
            f.note(f.lost, "mailer: consent view behind the consent log", key)
    gate(f, consents, mine, {r.id for r in every}, deliveries, since)


def gate(f: Findings, consents: dict[str, Rec], mine: set[str], known: set[str], deliveries: list[dict],
         since: float) -> None:
    """What the processor received, against the consent events of the topic.

    `consents`: the run's consent events naming the processor, by id; `mine`: those of this scenario;
    `known`: every event id of the run; `deliveries`: the processor's accepted payloads (with `_arrived`),
    of which those arrived at or after `since` belong to this scenario.
    """
    first: dict[str, dict] = {}
    times = Counter()
    for d in deliveries:
        times[d["delivery_id"]] += 1
        first.setdefault(d["delivery_id"], d)
    per_cause = defaultdict(set)
    shared_at = defaultdict(set)  # (subject, purpose) -> seqs of grants whose data went out (whole run)
    told_at = defaultdict(set)  # (subject, purpose) -> seqs of revokes the processor was told of
    for delivery_id, d in first.items():
        cause = consents.get(d["consent_event_id"])
        recent = d["_arrived"] >= since
        if cause is None:
            if recent and d["consent_event_id"] not in known:
                f.note(f.ungated, "delivery without any consent event", delivery_id)
            continue
        p = cause.payload
        key = (str(p["subject_id"]), p["purpose"])
        (shared_at if d["event"] == "subject.shared" else told_at)[key].add(p["seq"])
        if not recent:
            continue
        per_cause[(d["event"], cause.id)].add(delivery_id)
        if times[delivery_id] > 1:
            f.note(f.resent, "processor got the same delivery id again", delivery_id, times[delivery_id] - 1)
        same = str(p["subject_id"]) == d["subject_id"] and p["purpose"] == d["purpose"]
        wanted = "ConsentGranted" if d["event"] == "subject.shared" else "ConsentRevoked"
        if cause.type != wanted or not same:
            f.note(f.ungated, f"{d['event']} not matching its consent event", delivery_id)
        elif d["_arrived"] * 1000 + 50 < cause.ts_ms:
            f.note(f.ungated, f"{d['event']} before its consent event was published", delivery_id)
    for (kind, cause), ids in per_cause.items():
        if len(ids) > 1:
            f.note(f.duplicated, f"{kind}: two delivery ids for one consent event", cause, len(ids) - 1)
    revokes = defaultdict(list)
    for r in consents.values():
        if r.type == "ConsentRevoked":
            revokes[(str(r.payload["subject_id"]), r.payload["purpose"])].append((r.payload["seq"], r.id))
    # Between two shares of a key (or after the last), a revoke must have been told to the processor.
    for key, granted in shared_at.items():
        ordered = sorted(granted) + [float("inf")]
        for g, nxt in zip(ordered, ordered[1:]):
            between = [(s, i) for s, i in revokes.get(key, ()) if g < s < nxt]
            if between and not any(g < s < nxt for s in told_at.get(key, ())):
                s, event_id = min(between)
                if event_id in mine:
                    f.note(f.lost, "revoke never reached the processor after its data went out", event_id)
