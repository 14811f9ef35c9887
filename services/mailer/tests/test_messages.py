"""Unsubscribe tokens: round trip for any subject, refusal of anything altered."""

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assent_mailer import messages

SECRET = "a-test-secret-of-enough-length"


@given(st.uuids(), st.sampled_from(["newsletter", "surveys"]))
def test_token_round_trips_for_every_subject(subject, purpose):
    token = messages.unsubscribe_token(SECRET, subject, purpose)
    assert messages.read_unsubscribe_token(SECRET, token) == (subject, purpose)


@given(st.uuids(), st.integers(0, 200), st.characters(codec="ascii", categories=["L", "N"]))
def test_any_altered_token_is_refused(subject, position, replacement):
    token = messages.unsubscribe_token(SECRET, subject, "newsletter")
    position %= len(token)
    altered = token[:position] + replacement + token[position + 1:]
    if altered == token:
        return
    with pytest.raises(messages.BadToken):
        messages.read_unsubscribe_token(SECRET, altered)


def test_another_secret_does_not_verify():
    token = messages.unsubscribe_token(SECRET, UUID(int=1), "newsletter")
    with pytest.raises(messages.BadToken):
        messages.read_unsubscribe_token("another-secret-entirely", token)
