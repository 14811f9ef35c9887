"""Sealed personal fields: AES-GCM under a per-subject key, bound to event, field and subject."""

import time
from uuid import UUID, uuid4

import pytest

from assent_shared.personal import (
    DataKey, FieldUnreadable, KeyCache, PersonalFields, SealedField, SubjectErased, new_data_key, seal, unseal,
)
from assent_shared.events import Event


class _Owner:
    """A key owner in memory: enough to test the sealing rules (identity's is tested against PostgreSQL)."""

    def __init__(self) -> None:
        self.keys: dict[UUID, DataKey] = {}
        self.erased: set[UUID] = set()

    async def key_for(self, subject_id: UUID) -> DataKey:
        return self.keys.setdefault(subject_id, new_data_key(subject_id, uuid4()))

    async def key(self, subject_id: UUID, key_id: UUID) -> DataKey:
        if subject_id in self.erased:
            raise SubjectErased("erased")
        return self.keys[subject_id]


class Note(Event):
    user_id: UUID
    email: SealedField

    def subject(self) -> str:
        return str(self.user_id)


class OtherNote(Note):
    pass


def test_a_sealed_value_holds_no_plaintext_and_opens_with_its_key():
    key = new_data_key(uuid4(), uuid4())
    sealed = seal(key, "ada@example.com", "Note", "email")
    assert "ada@example" not in sealed.model_dump_json()
    assert unseal(key, sealed, "Note", "email") == "ada@example.com"
    assert seal(key, "ada@example.com", "Note", "email").ciphertext != sealed.ciphertext  # fresh nonce


@pytest.mark.parametrize("event_type, field", [("OtherNote", "email"), ("Note", "name")])
def test_a_field_moved_to_another_event_or_field_does_not_open(event_type, field):
    key = new_data_key(uuid4(), uuid4())
    sealed = seal(key, "ada@example.com", "Note", "email")
    with pytest.raises(FieldUnreadable):
        unseal(key, sealed, event_type, field)


def test_a_tampered_or_relabelled_field_does_not_open():
    key = new_data_key(uuid4(), uuid4())
    sealed = seal(key, "ada@example.com", "Note", "email")
    flipped = sealed.ciphertext[:-2] + ("A" if sealed.ciphertext[-2] != "A" else "B") + sealed.ciphertext[-1]
    with pytest.raises(FieldUnreadable):
        unseal(key, sealed.model_copy(update={"ciphertext": flipped}), "Note", "email")
    other = new_data_key(uuid4(), uuid4())
    with pytest.raises(FieldUnreadable):
        unseal(other, sealed, "Note", "email")


async def test_fields_open_through_the_owner_until_the_subject_is_erased():
    owner = _Owner()
    fields = PersonalFields(owner)
    user = uuid4()
    note = Note(user_id=user, email=await fields.seal(Note, "email", user, "ada@example.com"))
    copied = Note.model_validate_json(note.model_dump_json())
    assert await fields.open(copied, "email") == "ada@example.com"
    stranger = Note(user_id=uuid4(), email=note.email)
    with pytest.raises(FieldUnreadable):
        await fields.open(stranger, "email")
    with pytest.raises(FieldUnreadable):
        await fields.open(OtherNote(user_id=user, email=note.email), "email")
    owner.erased.add(user)
    with pytest.raises(SubjectErased):
        await fields.open(copied, "email")


def test_the_key_cache_forgets_after_its_ttl_and_keeps_at_most_its_bound(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = KeyCache(ttl=60, max_entries=2)
    keys = [new_data_key(uuid4(), uuid4()) for _ in range(3)]
    for key in keys:
        cache.put(key)
    assert cache.get(keys[0].subject_id, keys[0].key_id) is None  # evicted: over the bound
    assert cache.get(keys[2].subject_id, keys[2].key_id) == keys[2]
    now[0] += 59.9
    assert cache.get(keys[1].subject_id, keys[1].key_id) == keys[1]
    now[0] += 0.1
    assert cache.get(keys[1].subject_id, keys[1].key_id) is None
    assert cache.get(keys[2].subject_id, keys[2].key_id) is None


def test_a_key_never_shows_in_its_repr():
    key = new_data_key(uuid4(), uuid4())
    assert key.secret.hex() not in repr(key) and str(key.secret) not in repr(key)
