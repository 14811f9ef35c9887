"""Sealed values open only with the same secret, context and binding."""

import pytest

from assent_shared.sealing import Sealer, Unsealable


def test_a_sealed_value_opens_with_the_same_secret_context_and_binding():
    sealer = Sealer("a shared secret of some length", "mail-token")
    sealed = sealer.seal("the token", "user-1")
    assert "the token" not in sealed
    assert Sealer("a shared secret of some length", "mail-token").open(sealed, "user-1") == "the token"


@pytest.mark.parametrize("secret, context, bound_to", [
    ("another secret of some length", "mail-token", "user-1"),
    ("a shared secret of some length", "other-context", "user-1"),
    ("a shared secret of some length", "mail-token", "user-2"),
])
def test_it_does_not_open_under_another_secret_context_or_binding(secret, context, bound_to):
    sealed = Sealer("a shared secret of some length", "mail-token").seal("the token", "user-1")
    with pytest.raises(Unsealable):
        Sealer(secret, context).open(sealed, bound_to)


@pytest.mark.parametrize("garbage", ["", "not base64!", "AAAA", "A" * 80])
def test_garbage_is_unsealable_not_a_crash(garbage):
    with pytest.raises(Unsealable):
        Sealer("a shared secret of some length", "mail-token").open(garbage, "user-1")
