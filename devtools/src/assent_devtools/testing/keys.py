"""A stand-in for identity's key owner in a service's own tests: data keys in memory."""

from uuid import UUID, uuid4

from assent_shared.personal import DataKey, FieldUnreadable, SubjectErased, new_data_key


class MemoryKeyOwner:
    def __init__(self) -> None:
        self._keys: dict[UUID, DataKey] = {}
        self.erased: set[UUID] = set()

    async def key_for(self, subject_id: UUID) -> DataKey:
        if subject_id in self.erased:
            raise SubjectErased("the subject was erased")
        return self._keys.setdefault(subject_id, new_data_key(subject_id, uuid4()))

    async def key(self, subject_id: UUID, key_id: UUID) -> DataKey:
        if subject_id in self.erased:
            raise SubjectErased("the subject was erased")
        found = self._keys.get(subject_id)
        if found is None or found.key_id != key_id:
            raise FieldUnreadable("no such data key")
        return found

    async def erase(self, subject_id: UUID) -> None:
        self._keys.pop(subject_id, None)
        self.erased.add(subject_id)
