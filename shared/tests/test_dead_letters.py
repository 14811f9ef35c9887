"""What a dead letter copies: sealed events whole, never a value that may hold personal data in the clear."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from assent_shared.events import UserEmailChanged, UserEmailChangedV2
from assent_shared.kafka import _copyable_value
from assent_shared.personal import new_data_key, seal


@dataclass
class _Record:
    value: bytes | None
    headers: list[tuple[str, bytes]]
    topic: str = "t"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None


def test_a_valid_sealed_event_is_copied_and_its_field_stays_sealed():
    user = uuid4()
    event = UserEmailChangedV2(user_id=user, changed_at=datetime.now(UTC),
                               email=seal(new_data_key(user, uuid4()), "ada@example.com", "UserEmailChangedV2", "email"))
    value = event.model_dump_json().encode()
    assert _copyable_value(_Record(value, [("ce_type", b"UserEmailChangedV2")])) == value
    assert b"ada" not in value


def test_plaintext_versions_invalid_payloads_and_unknown_types_are_not_copied():
    plain = UserEmailChanged(user_id=uuid4(), email="ada@example.com", changed_at=datetime.now(UTC))
    assert _copyable_value(_Record(plain.model_dump_json().encode(), [("ce_type", b"UserEmailChanged")])) is None
    typed_in = b'{"user_id": "x", "email": "ada@example.com"}'
    assert _copyable_value(_Record(typed_in, [("ce_type", b"UserEmailChangedV2")])) is None
    assert _copyable_value(_Record(typed_in, [("ce_type", b"Whatever")])) is None
    assert _copyable_value(_Record(typed_in, [])) is None
