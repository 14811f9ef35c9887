"""The consent gate over random interleavings, duplicates, replays and reorderings.

The mailer's decisions are the pure functions of `assent_mailer.domain`; this test drives them
the way the handlers and the dispatcher do, with dictionaries in place of tables. A share may
also give up (its attempts used up) after the processor took the data: it may have arrived.
"""

from dataclasses import dataclass, field, replace
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from assent_mailer import domain

SUBJECTS = ["s1", "s2"]
PROCESSORS = ["p1", "p2"]
PURPOSES = ["surveys", "newsletter"]


@dataclass
class Model:
    consents: dict[tuple[str, str, str], domain.ConsentView] = field(default_factory=dict)
    emails: dict[str, str | None] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    processors: dict[str, set[str]] = field(default_factory=dict)
    deliveries: dict[str, list[domain.ProcessorDelivery]] = field(default_factory=dict)
    sent: list[tuple[domain.ProcessorDelivery, domain.ConsentView | None]] = field(default_factory=list)
    gave_up: list[tuple[domain.ProcessorDelivery, domain.ConsentView | None]] = field(default_factory=list)
    dedupe: set[str] = field(default_factory=set)

    def apply(self, event: tuple) -> None:
        kind = event[0]
        if kind == "register":
            _, subject = event
            if subject not in self.erased:
                self.emails[subject] = f"{subject}@example.com"
                self.replan(subject)
        elif kind == "erase":
            _, subject = event
            self.erased.add(subject)
            self.emails[subject] = None
            self.deliveries[subject] = [
                replace(d, status="cancelled") if d.status == "pending" and d.kind == domain.SHARED else d
                for d in self.deliveries.get(subject, [])
            ]
        elif kind == "processor":
            _, processor, purposes = event
            self.processors[processor] = set(purposes)
            for subject in {k[0] for k, v in self.consents.items() if k[2] == processor and v.granted}:
                self.replan(subject)
        else:
            _, subject, purpose, recipient, seq, granted, event_id = event
            held = self.consents.get((subject, purpose, recipient))
            if domain.applies(held, seq):
                self.consents[(subject, purpose, recipient)] = domain.ConsentView(purpose, recipient, granted, seq,
                                                                                  event_id)
                self.replan(subject)

    def replan(self, subject: str) -> None:
        plan = domain.plan([v for k, v in self.consents.items() if k[0] == subject],
                           self.emails.get(subject) is not None, self.processors, self.deliveries.get(subject, []))
        rows = [replace(d, status="cancelled") if d.delivery_id in plan.cancel and d.status == "pending" else d
                for d in self.deliveries.get(subject, [])]
        for new in plan.create:
            if new.dedupe_key not in self.dedupe:
                self.dedupe.add(new.dedupe_key)
                rows.append(domain.ProcessorDelivery(uuid4(), new.kind, new.recipient, new.purpose,
                                                     new.consent_event_id, "pending"))
        self.deliveries[subject] = rows

    def dispatch(self, pick: int, fail: bool = False) -> None:
        """`fail`: a share's last attempt fails, though the processor may have taken the data."""
        pending = [(s, i) for s, rows in self.deliveries.items() for i, d in enumerate(rows) if d.status == "pending"]
        if not pending:
            return
        subject, index = pending[pick % len(pending)]
        delivery = self.deliveries[subject][index]
        current = self.consents.get((subject, delivery.purpose, delivery.recipient))
        email_ok = delivery.kind == domain.REVOKED or self.emails.get(subject) is not None
        ok = domain.may_send(delivery, current, self.processors) and email_ok
        if ok and fail and delivery.kind == domain.SHARED:
            self.deliveries[subject][index] = replace(delivery, status="failed")
            self.gave_up.append((delivery, current))  # no replan: the dispatcher records the failure, nothing more
            return
        self.deliveries[subject][index] = replace(delivery, status="sent" if ok else "cancelled")
        if ok:
            self.sent.append((delivery, current))
            self.replan(subject)

    def drain(self) -> None:
        while any(d.status == "pending" for rows in self.deliveries.values() for d in rows):
            self.dispatch(0)


@st.composite
def histories(draw):
    """Each key's true consent history with seqs, registrations, processors and maybe an erasure."""
    events: list[tuple] = []
    latest: dict[tuple[str, str, str], tuple] = {}
    for subject in SUBJECTS:
        seq = 0
        for _ in range(draw(st.integers(0, 4))):
            seq += 1
            purpose, recipient = draw(st.sampled_from(PURPOSES)), draw(st.sampled_from(PROCESSORS))
            event = ("consent", subject, purpose, recipient, seq, draw(st.booleans()), str(UUID(int=len(events) + 1)))
            events.append(event)
            latest[(subject, purpose, recipient)] = event
        if draw(st.booleans()):
            events.append(("register", subject))
    for processor in PROCESSORS:
        if draw(st.booleans()):
            events.append(("processor", processor, tuple(draw(st.sets(st.sampled_from(PURPOSES), min_size=1)))))
    erased = draw(st.sets(st.sampled_from(SUBJECTS), max_size=1))
    events.extend(("erase", s) for s in erased)
    return events, latest, erased


@given(data=st.data(), history=histories())
@settings(max_examples=300, deadline=None)
def test_gate_holds_over_any_order(data, history):
    events, latest, erased = history
    delivered = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=4))
                                          if events else []))
    model = Model()
    for event in delivered:
        model.apply(event)
        for pick, fail in data.draw(st.lists(st.tuples(st.integers(0, 10), st.booleans()), max_size=2)):
            model.dispatch(pick, fail)
    model.drain()

    out = model.sent + model.gave_up  # what may have reached a processor
    for delivery, consent_at_send in out:
        if delivery.kind == domain.SHARED:
            # Nothing went to a processor unless the newest consent the mailer held was this grant.
            assert consent_at_send is not None and consent_at_send.granted
            assert consent_at_send.event_id == delivery.consent_event_id
    shared_ids = [d.consent_event_id for d, _ in out if d.kind == domain.SHARED]
    assert len(shared_ids) == len(set(shared_ids)), "a grant was shared twice"

    for (subject, purpose, recipient), event in latest.items():
        granted, event_id = event[5], event[6]
        registered = ("register", subject) in events and subject not in erased
        allowed = any(e[0] == "processor" and e[1] == recipient and purpose in e[2] for e in events)
        def of_key(deliveries):
            return [d for d, _ in deliveries if d.recipient == recipient and d.purpose == purpose
                    and (subject, d.delivery_id) in _ids(model, subject)]

        reached, sent_for_key = of_key(out), of_key(model.sent)
        if granted and registered and allowed:
            assert [d.consent_event_id for d in reached if d.kind == domain.SHARED].count(event_id) == 1
        if not granted and any(d.kind == domain.SHARED for d in reached):
            # Also when the share gave up: the processor may hold the data, so it is told to delete it.
            assert any(d.kind == domain.REVOKED and d.consent_event_id == event_id for d in sent_for_key)


def _ids(model: Model, subject: str) -> set[tuple[str, UUID]]:
    return {(subject, d.delivery_id) for d in model.deliveries.get(subject, [])}


def test_a_share_that_gave_up_is_revoked_like_one_that_arrived():
    """The case the random histories reach only rarely, spelled out: the processor may hold the data."""
    model = Model()
    for event in (("processor", "p1", ("surveys",)), ("register", "s1"),
                  ("consent", "s1", "surveys", "p1", 1, True, "grant-1")):
        model.apply(event)
    model.dispatch(0, fail=True)
    [(share, _)] = model.gave_up
    assert share.kind == domain.SHARED and not model.sent
    model.apply(("consent", "s1", "surveys", "p1", 2, False, "revoke-2"))
    model.drain()
    assert [(d.kind, d.consent_event_id) for d, _ in model.sent] == [(domain.REVOKED, "revoke-2")]
