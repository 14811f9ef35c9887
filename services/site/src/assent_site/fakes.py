"""The services the Site calls, in memory, for the unit lane (development only: the wheel leaves this module out).

Each fake keeps what its service would keep for the Site's calls and refuses as it would, with the
`UpstreamError` the HTTP client raises; what the service does further on (events, mails) is recorded
in plain lists a test reads (`sent`, `acceptances`, ...).
"""

import json
import secrets
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt

from assent_shared.events import FIRST_PARTY
from assent_site.clients.base import UpstreamError
from assent_site.deps import Upstreams
from assent_site.rendering import unified_diff

_KEY = "assent-site-fakes-token-signing-key-0001"
CONSOLE_LOCKOUT = 5  # failed console sign-ins before identity locks the account or the client out


def _refused(service: str, status: int, title: str, detail: str | None = None,
             retry_after: str | None = None) -> UpstreamError:
    return UpstreamError(service, status, title, detail, retry_after)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _token_for(user_id: str) -> str:
    return jwt.encode({"sub": user_id, "jti": secrets.token_hex(8)}, _KEY, algorithm="HS256")


def _subject(service: str, token: str) -> str:
    """Every service verifies the user's token itself: here, against the fakes' shared key."""
    try:
        return jwt.decode(token, _KEY, algorithms=["HS256"])["sub"]
    except jwt.InvalidTokenError:
        raise _refused(service, 401, "Not signed in") from None


class MemoryIdentity:
    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, str] = {}  # access token -> user id
        self.refresh_tokens: dict[str, str] = {}
        self.reset_tokens: dict[str, str] = {}
        self.verify_tokens: dict[str, str] = {}
        self.erased: dict[str, dict[str, Any]] = {}
        self.console_failures: Counter[str] = Counter()
        self.sent: list[tuple[str, str, str]] = []  # (mail, address, token): what identity would mail

    def _refuse(self, status: int, title: str, detail: str | None = None, retry_after: str | None = None):
        return _refused("identity", status, title, detail, retry_after)

    def _user(self, token: str) -> dict[str, Any]:
        user_id = self.sessions.get(token)
        if user_id is None:
            raise self._refuse(401, "Not signed in")
        return self.users[user_id]

    def _by_email(self, email: str) -> dict[str, Any] | None:
        return next((u for u in self.users.values() if u["email"] == email.lower()), None)

    def _mail_verification(self, user: dict[str, Any]) -> None:
        token = secrets.token_urlsafe(24)
        self.verify_tokens[token] = user["id"]
        self.sent.append(("verify", user["email"], token))

    async def register(self, email: str, password: str, display_name: str | None, newsletter: bool,
                       locale: str | None) -> dict:
        if "@" not in email:
            raise self._refuse(422, "Invalid request", "email: not an address")
        if len(password) < 10:
            raise self._refuse(422, "Invalid request", "password: at least 10 characters")
        if self._by_email(email) is not None:
            raise self._refuse(409, "Email already registered")
        user = {"id": str(uuid4()), "email": email.lower(), "password": password, "display_name": display_name,
                "newsletter": newsletter, "locale": locale, "email_verified": False, "created_at": _now()}
        self.users[user["id"]] = user
        self._mail_verification(user)
        return {k: v for k, v in user.items() if k != "password"}

    async def sign_in(self, email: str, password: str, client: str | None = None) -> dict:
        user = self._by_email(email)
        if user is None or user["password"] != password:
            raise self._refuse(401, "Invalid credentials")
        return self._tokens(user["id"])

    def _tokens(self, user_id: str) -> dict:
        access, refresh = _token_for(user_id), secrets.token_urlsafe(24)
        self.sessions[access], self.refresh_tokens[refresh] = user_id, user_id
        return {"access_token": access, "refresh_token": refresh, "expires_in": 900, "token_type": "bearer"}

    async def refresh(self, refresh_token: str) -> dict:
        user_id = self.refresh_tokens.pop(refresh_token, None)
        if user_id is None:
            raise self._refuse(401, "Invalid refresh token")
        return self._tokens(user_id)

    async def sign_out(self, token: str) -> None:
        if self.sessions.pop(token, None) is None:
            raise self._refuse(401, "Not signed in")

    async def me(self, token: str) -> dict:
        return {k: v for k, v in self._user(token).items() if k != "password"}

    async def export(self, token: str) -> bytes:
        return json.dumps({"user": await self.me(token)}).encode()

    async def erase(self, token: str) -> dict:
        user = self.users.pop(self._user(token)["id"])
        self.sessions = {t: u for t, u in self.sessions.items() if u != user["id"]}
        self.erased[user["id"]] = {"user_id": user["id"], "requested_at": _now(), "completed_at": None}
        return self.erased[user["id"]]

    async def erasure(self, user_id: str) -> dict:
        if user_id not in self.erased:
            raise self._refuse(404, "No such erasure")
        return self.erased[user_id]

    async def request_password_reset(self, email: str) -> None:
        user = self._by_email(email)
        if user is not None:  # the answer is the same either way: no one learns which addresses have accounts
            token = secrets.token_urlsafe(24)
            self.reset_tokens[token] = user["id"]
            self.sent.append(("reset", user["email"], token))

    async def reset_password(self, token: str, password: str) -> None:
        user_id = self.reset_tokens.get(token)
        if user_id is None:
            raise self._refuse(400, "Invalid token", "The link is invalid or has expired.")
        if len(password) < 10:
            raise self._refuse(422, "Invalid request", "password: at least 10 characters")
        del self.reset_tokens[token]
        self.users[user_id]["password"] = password
        self.sessions = {t: u for t, u in self.sessions.items() if u != user_id}

    async def verify_email(self, token: str) -> None:
        user_id = self.verify_tokens.pop(token, None)
        if user_id is None or user_id not in self.users:
            raise self._refuse(400, "Invalid token", "The link is invalid or has expired.")
        self.users[user_id]["email_verified"] = True

    async def resend_verification(self, token: str) -> None:
        self._mail_verification(self._user(token))

    async def find_user(self, email: str) -> dict:
        user = self._by_email(email)
        if user is None:
            raise self._refuse(404, "No such user")
        return {"id": user["id"]}

    async def erasures(self, cursor: str | None) -> tuple[list[dict], str | None]:
        return list(reversed(self.erased.values())), None

    async def reserve_console_attempt(self, account: str, client: str | None) -> None:
        keys = (f"account:{account}", f"client:{client}")
        if any(self.console_failures[key] >= CONSOLE_LOCKOUT for key in keys):
            raise self._refuse(429, "Too many failed sign-ins", "Wait before trying again.", retry_after="900")
        self.console_failures.update(keys)

    async def release_console_attempt(self, account: str, client: str | None) -> None:
        self.console_failures[f"account:{account}"] = 0
        self.console_failures[f"client:{client}"] = max(0, self.console_failures[f"client:{client}"] - 1)


class MemoryConsent:
    def __init__(self, purposes: tuple[str, ...] = ("newsletter", "surveys", "analytics_cookies", "order_updates"),
                 device_purposes: tuple[str, ...] = ("cookies", "partner_cookies")) -> None:
        self.purposes, self.device_purposes = purposes, device_purposes
        self.states: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self.history_of: dict[str, list[dict[str, Any]]] = {}
        self.receipts: dict[str, tuple[str, bytes]] = {}  # event id -> (subject, receipt)
        self.devices: dict[tuple[str, str], dict[str, Any]] = {}
        self.gpc_signals: list[str] = []

    def _subject_may(self, subject_id: str, token: str | None) -> None:
        if token is not None and _subject("consent", token) != subject_id:
            raise _refused("consent", 403, "Not yours")

    def _record(self, subject_id: str, purpose: str, recipient: str, granted: bool, method: str) -> dict:
        event_id = str(uuid4())
        state = {"purpose": purpose, "recipient": recipient, "granted": granted, "event_id": event_id,
                 "updated_at": _now()}
        self.states.setdefault(subject_id, {})[(purpose, recipient)] = state
        receipt = {"receipt_id": event_id, "timestamp": state["updated_at"], "purpose": purpose,
                   "recipient": recipient, "state": "granted" if granted else "withdrawn", "method": method}
        self.history_of.setdefault(subject_id, []).append({"receipt": receipt})
        self.receipts[event_id] = (subject_id, json.dumps(receipt).encode())
        return state

    async def consents(self, subject_id: str, token: str | None = None) -> list[dict]:
        self._subject_may(subject_id, token)
        return list(self.states.get(subject_id, {}).values())

    async def change(self, subject_id: str, purpose: str, recipient: str, granted: bool, token: str,
                     gpc: bool = False) -> dict:
        self._subject_may(subject_id, token)
        if purpose not in self.purposes:
            raise _refused("consent", 422, "Unknown purpose", "See GET /v1/purposes for the purposes there are.")
        if gpc and granted and recipient != FIRST_PARTY:
            granted = False  # Global Privacy Control: a third party is granted nothing
        current = self.states.get(subject_id, {}).get((purpose, recipient))
        if current is not None and current["granted"] == granted:
            return current
        return self._record(subject_id, purpose, recipient, granted, "gpc" if gpc else "privacy_center")

    async def history(self, subject_id: str, token: str | None = None) -> list[dict]:
        self._subject_may(subject_id, token)
        return list(self.history_of.get(subject_id, []))

    async def receipt(self, event_id: str, token: str) -> bytes:
        subject_id, receipt = self.receipts.get(event_id, (None, b""))
        if subject_id is None or subject_id != _subject("consent", token):
            raise _refused("consent", 404, "No such receipt")
        return receipt

    async def set_device_consent(self, device_id: str, purpose: str, granted: bool, gpc: bool) -> dict:
        if purpose not in self.device_purposes:
            raise _refused("consent", 422, "Unknown device purpose")
        self.devices[(device_id, purpose)] = {"device_id": device_id, "purpose": purpose, "granted": granted,
                                              "gpc": gpc, "event_id": str(uuid4())}
        return self.devices[(device_id, purpose)]

    async def honour_gpc(self, subject_id: str, token: str) -> list[dict]:
        self._subject_may(subject_id, token)
        self.gpc_signals.append(subject_id)
        held = self.states.get(subject_id, {}).values()
        granted = [s for s in held if s["granted"] and s["recipient"] != FIRST_PARTY]
        return [self._record(subject_id, s["purpose"], s["recipient"], False, "gpc") for s in granted]


class MemoryMailer:
    def __init__(self) -> None:
        self.unsubscribe_tokens: dict[str, str] = {}  # token in a mail's link -> the subject it unsubscribes
        self.unsubscribed: list[str] = []
        self.processors_by_id: dict[str, dict[str, Any]] = {}
        self.deliveries_of: dict[str, list[dict[str, Any]]] = {}
        self.mails = {"welcome": {"subject": "Welcome", "text": "Hello {name}", "html": "<p>Hello {name}</p>"}}

    def link_for(self, subject_id: str) -> str:
        """The token an unsubscribe link of a mail to the subject carries."""
        token = secrets.token_urlsafe(32)
        self.unsubscribe_tokens[token] = subject_id
        return token

    async def unsubscribe(self, token: str) -> None:
        if token not in self.unsubscribe_tokens:
            raise _refused("mailer", 400, "Invalid unsubscribe link", "The link is damaged or was not issued by us.")
        self.unsubscribed.append(self.unsubscribe_tokens[token])

    async def register_processor(self, processor_id: str, name: str, endpoint_url: str, purposes: list[str],
                                 signing_secret: str) -> dict:
        if not endpoint_url.startswith("https://"):
            raise _refused("mailer", 422, "Invalid request", "endpoint_url: https only")
        self.processors_by_id[processor_id] = {"processor_id": processor_id, "name": name,
                                               "endpoint_url": endpoint_url, "purposes": purposes}
        return self.processors_by_id[processor_id]

    async def deliveries(self, subject_id: str, token: str | None = None) -> list[dict]:
        return list(self.deliveries_of.get(subject_id, []))

    async def processors(self) -> list[dict]:
        return list(self.processors_by_id.values())

    async def processor_deliveries(self, processor_id: str, cursor: str | None) -> tuple[list[dict], str | None]:
        return [d for ds in self.deliveries_of.values() for d in ds if d.get("processor_id") == processor_id], None

    async def templates(self) -> list[dict]:
        return [{"mail": mail, "locales": ["en"]} for mail in self.mails]

    async def preview(self, mail: str, locale: str, part: str) -> tuple[str, str]:
        if mail not in self.mails:
            raise _refused("mailer", 404, "No such mail")
        return self.mails[mail]["subject"], self.mails[mail][part]


class MemoryPolicy:
    """One policy; a version published with `notice=True` is announced on the main page until `close_notice`."""

    def __init__(self, policy_id: str = "privacy") -> None:
        self.policy_id = policy_id
        self.published: list[dict[str, Any]] = []
        self.open_notice: int | None = None
        self.acceptances: list[tuple[str, int]] = []  # (user id, version) accepted by continued use
        self.publish_version({"title": "Privacy policy", "summary": "First version", "text": "# Privacy\n\nWe ask.",
                              "material": False, "data_use": [
                                  {"purpose": "newsletter", "processor": FIRST_PARTY, "data": ["email"]},
                                  {"purpose": "surveys", "processor": "acme-surveys", "data": ["email"]}]})

    def publish_version(self, version: dict[str, Any], notice: bool = False) -> dict:
        number = len(self.published) + 1
        self.published.append({**version, "policy_id": self.policy_id, "version": number, "published_at": _now(),
                               "effective_at": version.get("effective_at", _now())})
        self.open_notice = number if notice else None
        return self.published[-1]

    def _known(self, policy_id: str) -> None:
        if policy_id != self.policy_id:
            raise _refused("policy", 404, "No such policy")

    async def notice(self) -> dict | None:
        return self.published[self.open_notice - 1] if self.open_notice else None

    async def current(self, policy_id: str) -> dict:
        self._known(policy_id)
        return self.published[-1]

    async def versions(self, policy_id: str) -> list[dict]:
        self._known(policy_id)
        return list(reversed(self.published))

    async def version(self, policy_id: str, version: int) -> dict:
        self._known(policy_id)
        if not 1 <= version <= len(self.published):
            raise _refused("policy", 404, "No such version")
        return self.published[version - 1]

    async def diff(self, policy_id: str, first: int, last: int) -> dict:
        old, new = await self.version(policy_id, first), await self.version(policy_id, last)
        return {"from": first, "to": last, "diff": unified_diff(old["text"], new["text"], str(first), str(last))}

    async def publish(self, policy_id: str, version: dict[str, Any]) -> dict:
        self._known(policy_id)
        if not version.get("title") or not version.get("text"):
            raise _refused("policy", 422, "Invalid request", "title and text are required")
        return self.publish_version(version, notice=bool(version.get("material")))

    async def record_activity(self, token: str) -> dict:
        """A material version is accepted by continued use once per user."""
        user_id, number = _subject("policy", token), len(self.published)
        recorded = None
        if self.published[-1]["material"] and (user_id, number) not in self.acceptances:
            self.acceptances.append((user_id, number))
            recorded = {"user_id": user_id, "version": number, "how": "continued_use"}
        return {"policy_id": self.policy_id, "version": number, "recorded": recorded}


class MemoryTelemetry:
    def __init__(self) -> None:
        self.days: dict[date, dict[str, Any]] = {}

    async def stats(self, site_id: str, first: date, last: date, breakdowns: list[str]) -> dict:
        return self.days.get(first, {"pageviews": 0, "visitors": 0, "bots": 0, "breakdowns": {}})


class MemorySupport:
    RATE_LIMIT = 3  # messages per client an hour

    def __init__(self) -> None:
        self.inquiries: dict[str, dict[str, Any]] = {}
        self.reply_tokens: dict[str, str] = {}  # token in a reply mail -> inquiry id
        self.sent_by: Counter[str | None] = Counter()

    def _counted(self, client: str | None) -> None:
        self.sent_by[client] += 1
        if self.sent_by[client] > self.RATE_LIMIT:
            raise _refused("support", 429, "Too many messages", "Please try again later.", retry_after="3600")

    def _found(self, inquiry_id: str) -> dict[str, Any]:
        if inquiry_id not in self.inquiries:
            raise _refused("support", 404, "No such inquiry", "The link is invalid or has expired.")
        return self.inquiries[inquiry_id]

    def _may_read(self, inquiry: dict[str, Any], reply_token: str | None, token: str | None) -> None:
        if reply_token is not None:
            allowed = self.reply_tokens.get(reply_token) == inquiry["id"]
        else:
            allowed = token is not None and inquiry["user_id"] == _subject("support", token)
        if not allowed:
            raise _refused("support", 404, "No such inquiry", "The link is invalid or has expired.")

    def _message(self, inquiry: dict[str, Any], author: str, body: str) -> dict:
        message = {"id": str(uuid4()), "author": author, "body": body, "created_at": _now()}
        inquiry["messages"].append(message)
        inquiry["updated_at"] = message["created_at"]
        return message

    async def submit(self, inquiry: dict[str, Any], token: str | None, client: str | None) -> dict:
        self._counted(client)
        if inquiry.get("website"):  # the honeypot: a bot is told it worked, and nothing is kept
            return {"id": str(uuid4()), "reference": "Q-" + secrets.token_hex(3).upper()}
        user_id = _subject("support", token) if token else None
        created = {"id": str(uuid4()), "reference": "Q-" + secrets.token_hex(3).upper(), "topic": inquiry["topic"],
                   "status": "open", "user_id": user_id, "signed_in": user_id is not None,
                   "email": inquiry.get("email"), "locale": inquiry.get("locale"),
                   "reply_by_mail": bool(inquiry.get("email")) or bool(user_id and inquiry.get("want_reply")),
                   "received_at": _now(), "messages": []}
        self._message(created, "person", inquiry["message"])
        self.inquiries[created["id"]] = created
        return {"id": created["id"], "reference": created["reference"]}

    async def thread(self, inquiry_id: str, reply_token: str | None, token: str | None) -> dict:
        found = self._found(inquiry_id)
        self._may_read(found, reply_token, token)
        return found

    async def answer(self, inquiry_id: str, message: str, reply_token: str | None, token: str | None,
                     client: str | None) -> dict:
        found = await self.thread(inquiry_id, reply_token, token)
        if found["status"] == "closed":
            raise _refused("support", 409, "Inquiry closed", "Please send a new inquiry.")
        self._counted(client)
        found["status"] = "open"
        return self._message(found, "person", message)

    async def threads_of(self, user_id: str, token: str) -> list[dict]:
        if _subject("support", token) != user_id:
            raise _refused("support", 403, "Not your inquiries")
        return [i for i in self.inquiries.values() if i["user_id"] == user_id]

    async def inbox(self, status: str | None, topic: str | None,
                    cursor: str | None) -> tuple[list[dict], str | None]:
        found = [i for i in self.inquiries.values()
                 if (status is None or i["status"] == status) and (topic is None or i["topic"] == topic)]
        return found[::-1], None

    async def admin_thread(self, inquiry_id: str) -> dict:
        return self._found(inquiry_id)

    async def reply(self, inquiry_id: str, body: str) -> dict:
        found = self._found(inquiry_id)
        if found["status"] == "closed":
            raise _refused("support", 409, "Inquiry closed", "Please send a new inquiry.")
        found["status"] = "answered"
        if found["email"]:
            self.reply_tokens[secrets.token_urlsafe(32)] = inquiry_id
        return self._message(found, "admin", body)

    async def close(self, inquiry_id: str) -> dict:
        found = self._found(inquiry_id)
        found["status"] = "closed"
        return found

    async def feedback(self, first: date, last: date, bucket: str) -> list[dict]:
        received = [(date.fromisoformat(i["received_at"][:10]), i["topic"]) for i in self.inquiries.values()]
        counts = Counter((_period(day, bucket), topic) for day, topic in received if first <= day <= last)
        return [{"period": period.isoformat(), "topic": topic, "count": count}
                for (period, topic), count in counts.items()]

    async def erase_by_address(self, email: str) -> int:
        gone = [k for k, i in self.inquiries.items() if i["user_id"] is None and i["email"] == email]
        for key in gone:
            del self.inquiries[key]
        return len(gone)


def _period(day: date, bucket: str) -> date:
    if bucket == "month":
        return day.replace(day=1)
    return day - timedelta(days=day.weekday()) if bucket == "week" else day


def memory_upstreams() -> Upstreams:
    return Upstreams(MemoryIdentity(), MemoryConsent(), MemoryMailer(), MemoryPolicy(), MemoryTelemetry(),
                     MemorySupport())
