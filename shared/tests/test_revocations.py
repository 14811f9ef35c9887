"""The in-memory deny list of ended sessions: what it refuses, and when it forgets."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from assent_shared.events import SessionsRevoked
from assent_shared.revocations import Revocations


def _revoked(user_id, *session_ids, at: datetime, lives: timedelta = timedelta(minutes=16)) -> SessionsRevoked:
    return SessionsRevoked(user_id=user_id, session_ids=session_ids, revoked_at=at, expires_at=at + lives)


def test_one_ended_session_is_refused_and_the_users_other_sessions_are_not():
    user, sid, other = uuid4(), uuid4(), uuid4()
    now = datetime.now(UTC)
    revocations = Revocations()
    revocations.add(_revoked(user, sid, at=now))
    iat = int(now.timestamp()) - 5
    assert revocations.refuses({"sub": str(user), "sid": str(sid), "iat": iat})
    assert not revocations.refuses({"sub": str(user), "sid": str(other), "iat": iat})


def test_every_session_of_a_user_up_to_the_revocation_is_refused_later_ones_are_not():
    user = uuid4()
    now = datetime.now(UTC)
    revocations = Revocations()
    revocations.add(_revoked(user, at=now))
    assert revocations.refuses({"sub": str(user), "sid": str(uuid4()), "iat": int(now.timestamp())})
    assert not revocations.refuses({"sub": str(user), "sid": str(uuid4()), "iat": int(now.timestamp()) + 2})
    assert not revocations.refuses({"sub": str(uuid4()), "sid": str(uuid4()), "iat": int(now.timestamp())})


def test_an_entry_is_forgotten_once_the_tokens_it_covers_have_expired():
    user, sid = uuid4(), uuid4()
    now = datetime.now(UTC)
    revocations = Revocations()
    revocations.add(_revoked(user, sid, at=now, lives=timedelta(minutes=15)))
    revocations.add(_revoked(uuid4(), at=now, lives=timedelta(minutes=15)))
    revocations.forget_expired(now=(now + timedelta(minutes=14)).timestamp())
    assert revocations.refuses({"sub": str(user), "sid": str(sid), "iat": 0})
    revocations.forget_expired(now=(now + timedelta(minutes=16)).timestamp())
    assert not revocations.refuses({"sub": str(user), "sid": str(sid), "iat": 0})
    assert revocations._users == {} and revocations._sessions == {}
