"""Every consent use case on the in-memory store: what it records, what it publishes, what it refuses."""

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

import jwt
import pytest
from hypothesis import given, settings as hypothesis_settings
from hypothesis import strategies as st

from assent_consent import domain, handlers
from assent_consent.fakes import memory_consents
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_shared.cloudevents import EventMeta
from assent_shared.events import (
    FIRST_PARTY, ConsentGranted, ConsentRevoked, DeviceConsentGranted, DeviceConsentRevoked, EmailVerified,
    ErasureConfirmed, PolicyUpdated, ProcessorRegistered, UnsubscribeRequested, UserErased,
)

SETTINGS = ConsentSettings(environment="test")
SIGNER = ReceiptSigner(SETTINGS.signing_secret)
DEVICE = "d" * 22
NOW = datetime(2026, 12, 2, tzinfo=UTC)


def meta(event) -> EventMeta:
    return EventMeta(id=str(uuid4()), type=type(event).__name__, source="test", time=NOW)


async def on_event(consents, apply, event, **deps) -> None:
    async with consents.transaction() as store:
        await apply(store, event, meta(event), **deps)


async def with_processor(processor_id: str = "acme", purposes: tuple[str, ...] = ("surveys",)):
    consents = memory_consents()
    await on_event(consents, handlers.apply_processor_registered,
                   ProcessorRegistered(processor_id=processor_id, name="Acme", purposes=purposes))
    return consents


def change(subject_id: UUID, purpose: str, granted: bool, recipient: str = FIRST_PARTY, source: str = "user"):
    return domain.ChangeConsent(subject_id, purpose, recipient, granted, source)


async def test_a_grant_is_recorded_and_published_with_the_next_seq_and_the_policy_in_force():
    consents = await with_processor()
    await on_event(consents, handlers.apply_policy_updated, PolicyUpdated(
        policy_id="privacy", version=3, title="t", summary="s", effective_at=NOW, published_at=NOW))
    subject = uuid4()
    first = await handlers.change_consent(consents, change(subject, "newsletter", True), settings=SETTINGS)
    second = await handlers.change_consent(consents, change(subject, "surveys", True, "acme"), settings=SETTINGS)
    assert first.changed and second.changed and (first.state.seq, second.state.seq) == (1, 2)
    [granted, shared] = consents.store.published_of(ConsentGranted)
    assert (granted.seq, granted.policy_version, granted.source) == (1, 3, "user")
    assert (shared.recipient, shared.seq) == ("acme", 2)


async def test_a_change_to_the_state_held_publishes_nothing():
    consents = memory_consents()
    subject = uuid4()
    never = await handlers.change_consent(consents, change(subject, "newsletter", False), settings=SETTINGS)
    assert not never.changed and (never.state.granted, never.state.seq) == (False, 0)
    await handlers.change_consent(consents, change(subject, "newsletter", True), settings=SETTINGS)
    again = await handlers.change_consent(consents, change(subject, "newsletter", True), settings=SETTINGS)
    assert not again.changed and again.state.seq == 1
    assert len(consents.store.published) == 1


@pytest.mark.parametrize(("purpose", "recipient", "refusal"), [
    ("tracking", FIRST_PARTY, domain.UnknownPurpose),
    ("newsletter", "acme", domain.UnknownRecipient),
    ("surveys", "nobody", domain.UnknownRecipient),
])
async def test_an_unknown_target_is_refused_and_nothing_is_published(purpose, recipient, refusal):
    consents = await with_processor()
    with pytest.raises(refusal):
        await handlers.change_consent(consents, change(uuid4(), purpose, True, recipient), settings=SETTINGS)
    assert consents.store.published == []


async def test_an_erased_subject_gets_nothing_recorded_and_every_trace_goes():
    consents = memory_consents()
    subject = uuid4()
    await handlers.change_consent(consents, change(subject, "newsletter", True), settings=SETTINGS)
    await on_event(consents, handlers.apply_user_erased, UserErased(user_id=subject, erased_at=NOW))
    assert await handlers.list_consents(consents, subject) == []
    assert await handlers.list_receipts(consents, subject, signer=SIGNER) == []
    assert consents.store.forgotten == [str(subject)]
    [confirmed] = consents.store.published_of(ErasureConfirmed)
    assert (confirmed.user_id, confirmed.service) == (subject, "consent")
    with pytest.raises(domain.SubjectErased):
        await handlers.change_consent(consents, change(subject, "newsletter", True), settings=SETTINGS)
    await on_event(consents, handlers.apply_email_verified,
                   EmailVerified(user_id=subject, verified_at=NOW, newsletter_opt_in=True), settings=SETTINGS)
    await on_event(consents, handlers.apply_unsubscribe_requested,
                   UnsubscribeRequested(subject_id=subject, purpose="newsletter", requested_at=NOW), settings=SETTINGS)
    assert len(consents.store.published_of(ConsentGranted)) == 1  # the one before erasure


async def test_gpc_revokes_every_third_party_grant_and_keeps_first_party_ones():
    consents = await with_processor(purposes=("surveys", "newsletter"))
    subject = uuid4()
    for purpose, recipient in [("newsletter", FIRST_PARTY), ("surveys", "acme"), ("newsletter", "acme")]:
        await handlers.change_consent(consents, change(subject, purpose, True, recipient), settings=SETTINGS)
    revoked = await handlers.withdraw_third_party(consents, subject, settings=SETTINGS)
    assert [(r.state.purpose, r.state.granted, r.changed) for r in revoked] == [
        ("newsletter", False, True), ("surveys", False, True)]
    assert [(e.recipient, e.source, e.seq) for e in consents.store.published_of(ConsentRevoked)] == [
        ("acme", "gpc", 4), ("acme", "gpc", 5)]
    held = await handlers.list_consents(consents, subject)
    assert [(s.recipient, s.granted) for s in held if s.granted] == [(FIRST_PARTY, True)]
    assert await handlers.withdraw_third_party(consents, subject, settings=SETTINGS) == []


async def test_receipts_are_signed_paged_by_seq_and_found_by_id():
    consents = memory_consents()
    subject = uuid4()
    for granted in (True, False, True):
        await handlers.change_consent(consents, change(subject, "newsletter", granted), settings=SETTINGS)
    receipts = await handlers.list_receipts(consents, subject, signer=SIGNER)
    assert [r["receipt"]["seq"] for r in receipts] == [1, 2, 3]
    assert [r["receipt"]["state"] for r in receipts] == ["granted", "withdrawn", "granted"]
    key = jwt.PyJWK(SIGNER.jwks["keys"][0])
    assert jwt.decode(receipts[1]["signature"], key.key, algorithms=["EdDSA"]) == receipts[1]["receipt"]
    page = await handlers.list_receipts(consents, subject, 1, 1, signer=SIGNER)
    assert [r["receipt"]["seq"] for r in page] == [2]
    receipt_id = UUID(receipts[2]["receipt"]["receipt_id"])
    assert await handlers.find_receipt(consents, receipt_id, signer=SIGNER) == (subject, receipts[2])
    assert await handlers.find_receipt(consents, uuid4(), signer=SIGNER) is None


async def test_purposes_list_first_party_and_the_processors_announced_for_each():
    consents = await with_processor()
    listed = {p["purpose"]: p["recipients"] for p in await handlers.list_purposes(consents, settings=SETTINGS)}
    assert listed["surveys"] == [FIRST_PARTY, "acme"] and listed["newsletter"] == [FIRST_PARTY]
    assert set(listed) == set(SETTINGS.purposes)


async def test_a_processor_announced_again_takes_its_new_purposes():
    consents = await with_processor(purposes=("surveys",))
    await on_event(consents, handlers.apply_processor_registered,
                   ProcessorRegistered(processor_id="acme", name="Acme", purposes=("newsletter",)))
    with pytest.raises(domain.UnknownRecipient):
        await handlers.change_consent(consents, change(uuid4(), "surveys", True, "acme"), settings=SETTINGS)


async def test_a_policy_version_only_moves_forward():
    consents = memory_consents()
    for version in (4, 2):
        await on_event(consents, handlers.apply_policy_updated, PolicyUpdated(
            policy_id="privacy", version=version, title="t", summary="s", effective_at=NOW, published_at=NOW))
    await handlers.change_consent(consents, change(uuid4(), "newsletter", True), settings=SETTINGS)
    assert consents.store.published_of(ConsentGranted)[0].policy_version == 4


async def test_a_verified_signup_grants_the_newsletter_once_with_the_verification_as_evidence():
    consents = memory_consents()
    subject = uuid4()
    verified = EmailVerified(user_id=subject, verified_at=NOW, newsletter_opt_in=True)
    async with consents.transaction() as store:
        proof = meta(verified)
        await handlers.apply_email_verified(store, verified, proof, settings=SETTINGS)
        await handlers.apply_email_verified(store, verified, meta(verified), settings=SETTINGS)
    [granted] = consents.store.published
    assert (granted.source, granted.evidence, granted.seq) == ("signup", f"EmailVerified:{proof.id}", 1)


async def test_a_verification_without_opt_in_or_after_a_choice_grants_nothing():
    consents = memory_consents()
    chose, declined = uuid4(), uuid4()
    await handlers.change_consent(consents, change(chose, "newsletter", False, source="user"), settings=SETTINGS)
    await handlers.change_consent(consents, change(chose, "newsletter", True), settings=SETTINGS)
    await handlers.change_consent(consents, change(chose, "newsletter", False), settings=SETTINGS)
    await on_event(consents, handlers.apply_email_verified,
                   EmailVerified(user_id=chose, verified_at=NOW, newsletter_opt_in=True), settings=SETTINGS)
    await on_event(consents, handlers.apply_email_verified,
                   EmailVerified(user_id=declined, verified_at=NOW, newsletter_opt_in=False), settings=SETTINGS)
    assert [type(e) for e in consents.store.published] == [ConsentGranted, ConsentRevoked]
    assert await handlers.list_consents(consents, declined) == []


async def test_an_unsubscribe_link_revokes_with_its_own_source():
    consents = memory_consents()
    subject = uuid4()
    await handlers.change_consent(consents, change(subject, "newsletter", True), settings=SETTINGS)
    await on_event(consents, handlers.apply_unsubscribe_requested,
                   UnsubscribeRequested(subject_id=subject, purpose="newsletter", requested_at=NOW), settings=SETTINGS)
    [revoked] = consents.store.published_of(ConsentRevoked)
    assert (revoked.source, revoked.seq) == ("unsubscribe_link", 2)


def test_device_purposes_say_which_serve_a_third_party():
    listed = {p["purpose"]: p["third_party"] for p in handlers.list_device_purposes(settings=SETTINGS)}
    assert listed == {"cookies": False, "partner_cookies": True}


async def test_a_devices_first_refusal_is_recorded_and_a_repeat_is_not():
    consents = memory_consents()
    refusal = domain.ChangeDeviceConsent(DEVICE, "cookies", False, False)
    first = await handlers.change_device_consent(consents, refusal, settings=SETTINGS)
    again = await handlers.change_device_consent(consents, refusal, settings=SETTINGS)
    assert first == again and first.seq == 1
    [revoked] = consents.store.published
    assert isinstance(revoked, DeviceConsentRevoked) and (revoked.source, revoked.gpc) == ("visitor", False)
    [state] = await handlers.list_device_consents(consents, DEVICE)
    assert state == first


async def test_an_unknown_device_purpose_is_refused():
    consents = memory_consents()
    with pytest.raises(handlers.UnknownDevicePurpose):
        await handlers.change_device_consent(consents, domain.ChangeDeviceConsent(DEVICE, "ads", True, False),
                                             settings=SETTINGS)
    assert consents.store.published == []


async def test_a_device_request_with_gpc_withdraws_third_party_grants_and_refuses_new_ones():
    consents = memory_consents()
    await handlers.change_device_consent(consents, domain.ChangeDeviceConsent(DEVICE, "partner_cookies", True, False),
                                         settings=SETTINGS)
    state = await handlers.change_device_consent(
        consents, domain.ChangeDeviceConsent(DEVICE, "cookies", True, True), settings=SETTINGS)
    assert (state.purpose, state.granted, state.seq) == ("cookies", True, 3)
    [_, withdrawn, cookies] = consents.store.published
    assert isinstance(withdrawn, DeviceConsentRevoked) and (withdrawn.purpose, withdrawn.source) == (
        "partner_cookies", "gpc")
    assert isinstance(cookies, DeviceConsentGranted) and (cookies.source, cookies.gpc) == ("visitor", True)
    refused = await handlers.change_device_consent(
        consents, domain.ChangeDeviceConsent(DEVICE, "partner_cookies", True, True), settings=SETTINGS)
    assert not refused.granted and len(consents.store.published) == 3


async def test_device_receipts_are_signed_and_found_only_for_their_device():
    consents = memory_consents()
    state = await handlers.change_device_consent(
        consents, domain.ChangeDeviceConsent(DEVICE, "cookies", True, False), settings=SETTINGS)
    [receipt] = await handlers.list_device_receipts(consents, DEVICE, signer=SIGNER)
    assert (receipt["receipt"]["device_id"], receipt["receipt"]["state"]) == (DEVICE, "granted")
    assert await handlers.find_device_receipt(consents, DEVICE, state.event_id, signer=SIGNER) == receipt
    assert await handlers.find_device_receipt(consents, "e" * 22, state.event_id, signer=SIGNER) is None


# Order matters: over any sequence of requests the events of a subject (or device) are numbered 1, 2, 3...
# without a gap, a request that changes nothing publishes nothing, and after GPC no third party holds a grant.

targets = st.sampled_from([("newsletter", FIRST_PARTY), ("surveys", FIRST_PARTY), ("surveys", "acme"),
                           ("newsletter", "acme")])
requests = st.lists(st.one_of(st.tuples(targets, st.booleans()), st.just("gpc")), max_size=25)


@hypothesis_settings(deadline=None, max_examples=60)
@given(requests)
def test_any_sequence_of_changes_numbers_events_without_gaps_and_publishes_only_changes(sequence):
    async def run() -> None:
        consents = await with_processor(purposes=("surveys", "newsletter"))
        subject = uuid4()
        held: dict[tuple[str, str], bool] = {}
        expected_events = 0
        for request in sequence:
            if request == "gpc":
                await handlers.withdraw_third_party(consents, subject, settings=SETTINGS)
                expected_events += sum(1 for (_, r), g in held.items() if g and r != FIRST_PARTY)
                held = {k: g and k[1] == FIRST_PARTY for k, g in held.items()}
                continue
            (purpose, recipient), granted = request
            result = await handlers.change_consent(consents, change(subject, purpose, granted, recipient),
                                                   settings=SETTINGS)
            assert result.changed is (held.get((purpose, recipient), False) != granted)
            expected_events += result.changed
            held[(purpose, recipient)] = granted
        events = consents.store.published_of(ConsentGranted) + consents.store.published_of(ConsentRevoked)
        assert sorted(e.seq for e in events) == list(range(1, expected_events + 1))
        assert [e.seq for e in consents.store.published if e.subject() == str(subject)] == list(
            range(1, expected_events + 1))
        states = {(s.purpose, s.recipient): s.granted for s in await handlers.list_consents(consents, subject)}
        assert {k: g for k, g in states.items() if g} == {k: g for k, g in held.items() if g}

    asyncio.run(run())


device_requests = st.lists(st.tuples(st.sampled_from(["cookies", "partner_cookies"]), st.booleans(), st.booleans()),
                           max_size=25)


@hypothesis_settings(deadline=None, max_examples=60)
@given(device_requests)
def test_any_sequence_of_device_choices_numbers_events_and_leaves_no_third_party_grant_after_gpc(sequence):
    async def run() -> None:
        consents = memory_consents()
        for purpose, granted, gpc in sequence:
            before = len(consents.store.published)
            held = {s.purpose: s.granted for s in await handlers.list_device_consents(consents, DEVICE)}
            state = await handlers.change_device_consent(
                consents, domain.ChangeDeviceConsent(DEVICE, purpose, granted, gpc), settings=SETTINGS)
            after = {s.purpose: s.granted for s in await handlers.list_device_consents(consents, DEVICE)}
            if gpc:
                assert not after.get("partner_cookies", False)
            assert state.granted == (granted and not (gpc and purpose == "partner_cookies"))
            if after == held:
                assert len(consents.store.published) == before
        assert [e.seq for e in consents.store.published] == list(range(1, len(consents.store.published) + 1))

    asyncio.run(run())
