"""Consent's pure rules: no database, no Kafka."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assent_consent import domain
from assent_shared.events import FIRST_PARTY

PURPOSES = {"newsletter", "surveys"}
PROCESSORS = {"acme": {"surveys"}}
recipients = st.sampled_from([FIRST_PARTY, "acme", "other"])
sources = st.sampled_from(["signup", "user", "unsubscribe_link", "gpc", "admin"])


def state(purpose: str = "newsletter", recipient: str = FIRST_PARTY, granted: bool = True) -> domain.ConsentState:
    return domain.ConsentState(uuid4(), purpose, recipient, granted, 1, uuid4(), datetime.now(UTC))


@st.composite
def changes(draw: st.DrawFn) -> domain.ChangeConsent:
    return domain.ChangeConsent(UUID(int=1), draw(st.sampled_from(sorted(PURPOSES))), draw(recipients),
                                draw(st.booleans()), draw(sources))


def test_a_consent_names_a_configured_purpose_and_a_recipient_announced_for_it():
    domain.check_target("newsletter", FIRST_PARTY, PURPOSES, PROCESSORS)
    domain.check_target("surveys", "acme", PURPOSES, PROCESSORS)
    with pytest.raises(domain.UnknownPurpose):
        domain.check_target("tracking", FIRST_PARTY, PURPOSES, PROCESSORS)
    with pytest.raises(domain.UnknownRecipient):
        domain.check_target("newsletter", "acme", PURPOSES, PROCESSORS)  # acme was announced for surveys only
    with pytest.raises(domain.UnknownRecipient):
        domain.check_target("surveys", "other", PURPOSES, PROCESSORS)


@given(current=st.none() | st.builds(state, granted=st.booleans()), granted=st.booleans())
def test_only_a_different_state_is_a_change_and_no_record_means_not_granted(current, granted):
    held = current.granted if current else False
    assert domain.is_change(current, granted) is (held != granted)


@given(changes())
def test_under_gpc_nothing_is_granted_to_a_third_party_and_the_rest_stands(cmd):
    ruled = domain.under_gpc(cmd)
    assert (ruled.subject_id, ruled.purpose, ruled.recipient) == (cmd.subject_id, cmd.purpose, cmd.recipient)
    if cmd.granted and cmd.recipient != FIRST_PARTY:
        assert (ruled.granted, ruled.source) == (False, "gpc")
    else:
        assert ruled == cmd


@given(st.lists(st.builds(state, purpose=st.sampled_from(sorted(PURPOSES)), recipient=recipients,
                          granted=st.booleans())))
def test_gpc_withdraws_exactly_the_grants_to_third_parties(states):
    withdrawn = domain.third_party_grants(states)
    assert withdrawn == [s for s in states if s.granted and s.recipient != FIRST_PARTY]
    assert all(s.recipient != FIRST_PARTY and s.granted for s in withdrawn)


@given(purpose=st.sampled_from(["cookies", "partner_cookies"]), granted=st.booleans(), gpc=st.booleans())
def test_a_devices_gpc_refuses_third_party_grants_only(purpose, granted, gpc):
    third = {"partner_cookies"}
    decided = domain.device_decision(domain.ChangeDeviceConsent("d" * 22, purpose, granted, gpc), third)
    if gpc and granted and purpose in third:
        assert decided == (False, "gpc")
    else:
        assert decided == (granted, "visitor")


def test_a_devices_gpc_withdraws_its_third_party_grants():
    held = [domain.DeviceConsentState("d" * 22, p, g, 1, uuid4(), datetime.now(UTC))
            for p, g in [("cookies", True), ("partner_cookies", True), ("ads", False)]]
    assert [s.purpose for s in domain.gpc_withdrawals(held, {"partner_cookies", "ads"})] == ["partner_cookies"]
