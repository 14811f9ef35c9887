"""The auditor's processor check can fail: each kind of finding, from a hand-made topic and processor record."""

from chaos.audit import Findings, consumers, gate
from chaos.ledger import Rec

SUBJECT, PURPOSE, PROC = "7d7f2c1e-0000-4000-8000-000000000001", "surveys", "proc-1"


def consent(event_id: str, kind: str, seq: int, ts_ms: int = 1_000, purpose: str = PURPOSE) -> Rec:
    return Rec("consent.consents.v1", 0, seq, ts_ms, event_id, kind, SUBJECT,
               {"subject_id": SUBJECT, "purpose": purpose, "recipient": PROC, "seq": seq})


def delivery(delivery_id: str, event: str, cause: str, arrived: float = 2.0, purpose: str = PURPOSE) -> dict:
    return {"delivery_id": delivery_id, "event": event, "consent_event_id": cause, "subject_id": SUBJECT,
            "purpose": purpose, "_arrived": arrived}


def check(events: list[Rec], deliveries: list[dict]) -> Findings:
    f = Findings()
    consents = {r.id: r for r in events}
    gate(f, consents, set(consents), set(consents), deliveries, since=0.0)
    return f


def test_a_share_and_its_revocation_in_order_are_clean():
    f = check([consent("g1", "ConsentGranted", 1), consent("r2", "ConsentRevoked", 2)],
              [delivery("d1", "subject.shared", "g1"), delivery("d2", "subject.revoked", "r2")])
    assert f.clean and not f.resent


def test_a_share_without_any_consent_event_is_ungated():
    f = check([], [delivery("d1", "subject.shared", "nowhere")])
    assert f.ungated == {"delivery without any consent event": 1}


def test_a_share_on_a_revoke_or_another_purpose_is_ungated():
    f = check([consent("r1", "ConsentRevoked", 1), consent("g2", "ConsentGranted", 2, purpose="analytics_cookies")],
              [delivery("d1", "subject.shared", "r1"), delivery("d2", "subject.shared", "g2")])
    assert f.ungated == {"subject.shared not matching its consent event": 2}


def test_a_share_arriving_before_its_grant_was_published_is_ungated():
    f = check([consent("g1", "ConsentGranted", 1, ts_ms=5_000)], [delivery("d1", "subject.shared", "g1", arrived=2.0)])
    assert f.ungated == {"subject.shared before its consent event was published": 1}


def test_two_delivery_ids_for_one_grant_are_a_duplicate_and_one_id_twice_is_a_resend():
    f = check([consent("g1", "ConsentGranted", 1)],
              [delivery("d1", "subject.shared", "g1"), delivery("d1", "subject.shared", "g1"),
               delivery("d2", "subject.shared", "g1")])
    assert f.duplicated == {"subject.shared: two delivery ids for one consent event": 1}
    assert f.resent == {"processor got the same delivery id again": 1}


def test_a_revoke_after_the_data_went_out_that_never_reached_the_processor_is_lost():
    f = check([consent("g1", "ConsentGranted", 1), consent("r2", "ConsentRevoked", 2),
               consent("g3", "ConsentGranted", 3), consent("r4", "ConsentRevoked", 4)],
              [delivery("d1", "subject.shared", "g1"), delivery("d3", "subject.shared", "g3"),
               delivery("d4", "subject.revoked", "r4")])
    assert f.lost == {"revoke never reached the processor after its data went out": 1}
    assert f.samples["revoke never reached the processor after its data went out"] == ["r2"]


def test_who_owes_which_event_is_what_the_services_subscribe_with():
    owed = consumers()
    users = owed["identity.users.v1"]
    assert "consent" not in users["UserRegisteredV2"] and set(users["UserRegisteredV2"]) == {"mailer", "policy"}
    assert set(users["UserErased"]) >= {"consent", "mailer", "policy", "support"}
    assert owed["consent.consents.v1"]["ConsentRevoked"] == ("mailer",)
    assert owed["telemetry.hits.v1"] == {"PageViewed": ("telemetry",)}  # its batch aggregator
