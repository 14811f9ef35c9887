"""`ports.IdentityStore` in memory, for the unit lane (development only: the wheel leaves this module out)."""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from assent_identity.domain import User
from assent_identity.ports import EmailTaken, Row
from assent_shared.fakes import MemoryStore, MemoryUnitOfWork


@dataclass
class _Account:
    user: User
    password_hash: str
    newsletter_pending: bool
    verified_at: datetime | None = None


class MemoryIdentityStore(MemoryStore):
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        self.clock = clock
        self.accounts: dict[UUID, _Account] = {}
        self.sessions: dict[UUID, dict] = {}
        self.signing_keys: list[dict] = []
        self.policies: dict[str, int] = {}
        self.failures: dict[str, dict] = {}
        self.erasures: dict[UUID, datetime] = {}
        self.confirmations: dict[UUID, dict[str, datetime]] = {}
        self.data_keys: dict[UUID, dict] = {}
        self.data_key_erasures: dict[UUID, str] = {}
        self.key_audit_rows: list[dict] = []
        self.mail_tokens: dict[str, dict] = {}
        self.reset_requests: list[tuple[str, datetime]] = []

    # accounts
    async def insert_user(self, user_id: UUID, email: str, password_hash: str, display_name: str | None,
                          locale: str | None = None, newsletter_pending: bool = False) -> User:
        if await self.user_by_email(email) is not None:
            raise EmailTaken
        user = User(user_id, email, self.clock(), display_name, locale=locale)
        self.accounts[user_id] = _Account(user, password_hash, newsletter_pending)
        return user

    async def user_by_id(self, user_id: UUID) -> User | None:
        account = self.accounts.get(user_id)
        return account.user if account else None

    async def user_by_email(self, email: str) -> User | None:
        return next((a.user for a in self.accounts.values() if a.user.email == email), None)

    async def credentials_by_email(self, email: str) -> tuple[User, str] | None:
        return next(((a.user, a.password_hash) for a in self.accounts.values() if a.user.email == email), None)

    async def update_password_hash(self, user_id: UUID, password_hash: str) -> None:
        if user_id in self.accounts:
            self.accounts[user_id].password_hash = password_hash

    async def password_hash_of(self, user_id: UUID) -> str | None:
        account = self.accounts.get(user_id)
        return account.password_hash if account else None

    async def update_email(self, user_id: UUID, email: str) -> None:
        taken = await self.user_by_email(email)
        if taken is not None and taken.id != user_id:
            raise EmailTaken
        account = self.accounts[user_id]
        account.user, account.verified_at = replace(account.user, email=email, email_verified=False), None
        self.mail_tokens = {s: t for s, t in self.mail_tokens.items()
                            if not (t["user_id"] == user_id and t["purpose"] == "verify_email")}

    async def disable_user(self, user_id: UUID) -> bool:
        account = self.accounts.get(user_id)
        if account is None or account.user.disabled:
            return False
        account.user = replace(account.user, disabled=True)
        return True

    async def mark_verified(self, user_id: UUID) -> bool | None:
        account = self.accounts.get(user_id)
        if account is None or account.user.email_verified:
            return None
        pending, account.newsletter_pending = account.newsletter_pending, False
        account.user, account.verified_at = replace(account.user, email_verified=True), self.clock()
        return pending

    # sessions
    async def insert_session(self, session_id: UUID, user_id: UUID, refresh_hash: bytes,
                             expires_at: datetime) -> None:
        self.sessions[session_id] = {"id": session_id, "user_id": user_id, "refresh_token_hash": refresh_hash,
                                     "expires_at": expires_at, "revoked_at": None}

    def _live(self, session: dict) -> bool:
        return session["revoked_at"] is None and session["expires_at"] > self.clock()

    async def session_by_refresh(self, refresh_hash: bytes) -> Row | None:
        return next(({"id": s["id"], "user_id": s["user_id"]} for s in self.sessions.values()
                     if s["refresh_token_hash"] == refresh_hash and self._live(s)), None)

    async def rotate_refresh(self, session_id: UUID, refresh_hash: bytes) -> None:
        self.sessions[session_id]["refresh_token_hash"] = refresh_hash

    async def session_active(self, session_id: UUID) -> bool:
        session = self.sessions.get(session_id)
        return session is not None and self._live(session)

    async def revoke_session(self, session_id: UUID) -> UUID | None:
        session = self.sessions.get(session_id)
        if session is None or session["revoked_at"] is not None:
            return None
        session["revoked_at"] = self.clock()
        return session["user_id"]

    async def revoke_sessions(self, user_id: UUID, keep: UUID | None = None) -> list[UUID]:
        ended = [s for s in self.sessions.values()
                 if s["user_id"] == user_id and s["revoked_at"] is None and s["id"] != keep]
        for session in ended:
            session["revoked_at"] = self.clock()
        return [s["id"] for s in ended]

    # signing keys
    async def active_signing_key(self) -> Row | None:
        active = [k for k in self.signing_keys if k["retired_at"] is None]
        return max(active, key=lambda k: k["created_at"], default=None)

    async def insert_signing_key(self, kid: str, sealed: str, public_jwk: dict) -> None:
        self.signing_keys.append({"kid": kid, "private_key_sealed": sealed, "public_jwk": public_jwk,
                                  "created_at": self.clock(), "retired_at": None})

    async def retire_keys_except(self, kid: str) -> None:
        for key in self.signing_keys:
            if key["kid"] != kid and key["retired_at"] is None:
                key["retired_at"] = self.clock()

    async def published_keys(self, retired_within_seconds: int) -> list[dict]:
        since = self.clock() - timedelta(seconds=retired_within_seconds)
        shown = [k for k in self.signing_keys if k["retired_at"] is None or k["retired_at"] > since]
        return [k["public_jwk"] for k in sorted(shown, key=lambda k: k["created_at"], reverse=True)]

    async def lock_keys(self) -> None:
        pass  # one event loop, no concurrent transaction to keep out

    # policy
    async def policy_version(self, policy_id: str) -> int:
        return self.policies.get(policy_id) or 1

    async def record_policy(self, policy_id: str, version: int, effective_at: datetime) -> None:
        self.policies[policy_id] = max(version, self.policies.get(policy_id, version))

    # throttling
    async def reserve_attempt(self, key: str, window: int) -> tuple[int | None, float]:
        now = self.clock()
        row = self.failures.get(key)
        if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
            return None, max((row["locked_until"] - now).total_seconds(), 0.0)
        if row is None:
            row = self.failures[key] = {"failures": 0, "first_at": now, "locked_until": None}
        if row["first_at"] < now - timedelta(seconds=window):
            row["failures"], row["first_at"] = 0, now
        row["failures"] += 1
        return row["failures"], 0.0

    async def release_attempt(self, key: str, free: int) -> None:
        row = self.failures.get(key)
        if row is not None:
            if row["failures"] - 1 < free:
                row["locked_until"] = None
            row["failures"] = max(row["failures"] - 1, 0)

    async def prune_login_failures(self, window: int) -> int:
        now = self.clock()
        gone = [k for k, r in self.failures.items() if r["first_at"] < now - timedelta(seconds=window)
                and (r["locked_until"] is None or r["locked_until"] < now)]
        for key in gone:
            del self.failures[key]
        return len(gone)

    async def lock(self, key: str, seconds: int) -> None:
        if key in self.failures:
            self.failures[key]["locked_until"] = self.clock() + timedelta(seconds=seconds)

    async def clear_failures(self, key: str) -> None:
        self.failures.pop(key, None)

    # erasure
    async def erase_user(self, user_id: UUID, requested_at: datetime) -> None:
        self.accounts.pop(user_id, None)
        self.sessions = {i: s for i, s in self.sessions.items() if s["user_id"] != user_id}
        self.mail_tokens = {i: t for i, t in self.mail_tokens.items() if t["user_id"] != user_id}
        self.erasures.setdefault(user_id, requested_at)

    async def record_confirmation(self, user_id: UUID, service: str, at: datetime) -> None:
        if user_id in self.erasures:
            self.confirmations.setdefault(user_id, {}).setdefault(service, at)

    async def erasure_status(self, user_id: UUID) -> tuple[datetime, dict[str, datetime]] | None:
        if user_id not in self.erasures:
            return None
        return self.erasures[user_id], dict(self.confirmations.get(user_id, {}))

    async def erasure_page(self, before: tuple[datetime, UUID] | None, limit: int) -> list[Row]:
        order = sorted(self.erasures.items(), key=lambda e: (e[1], e[0]), reverse=True)
        rows = []
        for user_id, requested_at in order:
            if before is not None and not (requested_at, user_id) < before:
                continue
            confirmed = sorted(self.confirmations.get(user_id, {}).items())
            rows.append({"user_id": user_id, "requested_at": requested_at, "services": [s for s, _ in confirmed],
                         "confirmed_at": [at for _, at in confirmed]})
        return rows[:limit]

    # data keys
    async def data_key(self, subject_id: UUID) -> Row | None:
        return self.data_keys.get(subject_id)

    async def insert_data_key(self, subject_id: UUID, key_id: UUID, wrapped: bytes, owner: str) -> Row:
        return self.data_keys.setdefault(subject_id, {"key_id": key_id, "wrapped_key": wrapped,
                                                      "owner_service": owner})

    async def data_key_erased(self, subject_id: UUID) -> bool:
        return subject_id in self.data_key_erasures

    async def delete_data_key(self, subject_id: UUID, by: str) -> None:
        self.data_keys.pop(subject_id, None)
        self.data_key_erasures.setdefault(subject_id, by)

    async def audit_key_access(self, service: str, subject_id: UUID, key_id: UUID | None, action: str,
                               outcome: str) -> None:
        self.key_audit_rows.append({"at": self.clock(), "service": service, "subject_id": subject_id,
                                    "key_id": key_id, "action": action, "outcome": outcome})

    async def key_audit(self, subject_id: UUID) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "subject_id"} for r in self.key_audit_rows
                if r["subject_id"] == subject_id]

    async def prune_key_audit(self, older_than_seconds: float) -> int:
        since = self.clock() - timedelta(seconds=older_than_seconds)
        kept = [r for r in self.key_audit_rows if r["at"] >= since]
        pruned, self.key_audit_rows = len(self.key_audit_rows) - len(kept), kept
        return pruned

    # mail links
    async def insert_mail_token(self, selector: str, verifier_hash: bytes, user_id: UUID, purpose: str,
                                expires_at: datetime) -> None:
        now = self.clock()
        self.mail_tokens[selector] = {"selector": selector, "verifier_hash": verifier_hash, "user_id": user_id,
                                      "purpose": purpose, "expires_at": expires_at, "used_at": None,
                                      "created_at": now}
        self.mail_tokens = {s: t for s, t in self.mail_tokens.items()
                            if not (t["user_id"] == user_id and t["expires_at"] < now)}

    async def mail_tokens_since(self, user_id: UUID, purpose: str, seconds: int) -> int:
        since = self.clock() - timedelta(seconds=seconds)
        return sum(1 for t in self.mail_tokens.values()
                   if t["user_id"] == user_id and t["purpose"] == purpose and t["created_at"] > since)

    async def lock_mail_token(self, selector: str, purpose: str) -> Row | None:
        token = self.mail_tokens.get(selector)
        if token is None or token["purpose"] != purpose:
            return None
        return {k: token[k] for k in ("selector", "verifier_hash", "user_id", "used_at", "expires_at")}

    async def use_mail_token(self, selector: str) -> None:
        self.mail_tokens[selector]["used_at"] = self.clock()

    async def drop_mail_tokens(self, user_id: UUID, purpose: str) -> None:
        self.mail_tokens = {s: t for s, t in self.mail_tokens.items()
                            if not (t["user_id"] == user_id and t["purpose"] == purpose and t["used_at"] is None)}

    async def reset_requests_within_hour(self, client_key: str) -> int:
        since = self.clock() - timedelta(hours=1)
        self.reset_requests = [(k, at) for k, at in self.reset_requests if at >= since]
        return sum(1 for k, at in self.reset_requests if k == client_key and at > since)

    async def record_reset_request(self, client_key: str) -> None:
        self.reset_requests.append((client_key, self.clock()))


def memory_identities(clock: Callable[[], datetime] = lambda: datetime.now(UTC)
                      ) -> MemoryUnitOfWork[MemoryIdentityStore]:
    return MemoryUnitOfWork(MemoryIdentityStore(clock))
