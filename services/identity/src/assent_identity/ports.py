"""What identity's use cases need of storage: `storage.PgIdentityStore` on PostgreSQL, `fakes.MemoryIdentityStore`
in memory. Every method runs in the caller's unit of work; "now" is the database's clock (the fake's own)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from assent_identity.domain import User
from assent_shared.uow import Publishing, UnitOfWork

Row = Mapping[str, Any]


class EmailTaken(Exception):
    pass


class IdentityStore(Publishing, Protocol):
    async def insert_user(self, user_id: UUID, email: str, password_hash: str, display_name: str | None,
                          locale: str | None = None, newsletter_pending: bool = False) -> User:
        """EmailTaken when another account has the address."""

    async def user_by_id(self, user_id: UUID) -> User | None: ...

    async def credentials_by_email(self, email: str) -> tuple[User, str] | None: ...

    async def update_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    async def insert_session(self, session_id: UUID, user_id: UUID, refresh_hash: bytes,
                             expires_at: datetime) -> None: ...

    async def session_by_refresh(self, refresh_hash: bytes) -> Row | None: ...

    async def rotate_refresh(self, session_id: UUID, refresh_hash: bytes) -> None: ...

    async def session_active(self, session_id: UUID) -> bool: ...

    async def revoke_session(self, session_id: UUID) -> UUID | None:
        """End one session; returns its user when it was live."""

    async def active_signing_key(self) -> Row | None: ...

    async def insert_signing_key(self, kid: str, sealed: str, public_jwk: dict) -> None: ...

    async def retire_keys_except(self, kid: str) -> None: ...

    async def published_keys(self, retired_within_seconds: int) -> list[dict]:
        """The signing key and every key retired so recently that tokens it signed may still be valid."""

    async def lock_keys(self) -> None: ...

    async def policy_version(self, policy_id: str) -> int: ...

    async def record_policy(self, policy_id: str, version: int, effective_at: datetime) -> None: ...

    async def reserve_attempt(self, key: str, window: int) -> tuple[int | None, float]:
        """Count an attempt before its password is checked, unless the key is locked. Returns the
        attempts in the key's window, or None and the seconds the lock still holds. The row lock
        serializes parallel attempts, so each sees the count (and the lock) of those before it."""

    async def release_attempt(self, key: str, free: int) -> None:
        """A reserved attempt that succeeded is no failure: un-count it, and lift the lock its
        reservation set when the failures left are fewer than the rule lets pass."""

    async def prune_login_failures(self, window: int) -> int:
        """Rows whose window has passed and whose lock has ended hold nothing any rule still needs."""

    async def lock(self, key: str, seconds: int) -> None: ...

    async def clear_failures(self, key: str) -> None: ...

    async def update_email(self, user_id: UUID, email: str) -> None:
        """EmailTaken when another account has it. A new address is unverified until its own link is used;
        links sent to the old one stop working."""

    async def revoke_sessions(self, user_id: UUID, keep: UUID | None = None) -> list[UUID]:
        """End the user's sessions but `keep`; returns the ids ended."""

    async def disable_user(self, user_id: UUID) -> bool: ...

    async def user_by_email(self, email: str) -> User | None: ...

    async def password_hash_of(self, user_id: UUID) -> str | None: ...

    async def erase_user(self, user_id: UUID, requested_at: datetime) -> None:
        """Delete the account with its credentials and sessions; keep only the id as a tombstone."""

    async def record_confirmation(self, user_id: UUID, service: str, at: datetime) -> None: ...

    async def erasure_status(self, user_id: UUID) -> tuple[datetime, dict[str, datetime]] | None: ...

    async def erasure_page(self, before: tuple[datetime, UUID] | None,
                           limit: int) -> list[Row]:
        """Erasures newest first by (requested_at, user_id), from before `before`, each with its confirmations."""

    async def data_key(self, subject_id: UUID) -> Row | None: ...

    async def insert_data_key(self, subject_id: UUID, key_id: UUID, wrapped: bytes,
                              owner: str) -> Row:
        """The subject's key: the one just made, or the one a concurrent call made first."""

    async def data_key_erased(self, subject_id: UUID) -> bool: ...

    async def delete_data_key(self, subject_id: UUID, by: str) -> None: ...

    async def audit_key_access(self, service: str, subject_id: UUID, key_id: UUID | None,
                               action: str, outcome: str) -> None: ...

    async def key_audit(self, subject_id: UUID) -> list[dict]: ...

    async def prune_key_audit(self, older_than_seconds: float) -> int: ...

    async def insert_mail_token(self, selector: str, verifier_hash: bytes, user_id: UUID,
                                purpose: str, expires_at: datetime) -> None: ...

    async def mail_tokens_since(self, user_id: UUID, purpose: str, seconds: int) -> int: ...

    async def lock_mail_token(self, selector: str, purpose: str) -> Row | None: ...

    async def use_mail_token(self, selector: str) -> None: ...

    async def drop_mail_tokens(self, user_id: UUID, purpose: str) -> None: ...

    async def mark_verified(self, user_id: UUID) -> bool | None:
        """Verify the address; the pending newsletter opt-in it releases, or None when it was already verified."""

    async def reset_requests_within_hour(self, client_key: str) -> int: ...

    async def record_reset_request(self, client_key: str) -> None: ...


Identities = UnitOfWork[IdentityStore]
