"""Turns a claimed email delivery into the mail to send: whom to, in which language, from which template.

Every kind of delivery is one template (templating.MAILS). Personal values that arrived sealed
(an inquiry's address and reply) are opened only here, at send time: an erasure that came
first (the key is gone) leaves nothing to send.
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

import structlog

from assent_mailer import domain, messages
from assent_mailer.ports import MailerStore, Row
from assent_mailer.settings import MailerSettings
from assent_mailer.templating import Templates
from assent_shared.events import InquiryAnswered
from assent_shared.personal import PersonalFields, SubjectErased
from assent_shared.sealing import Sealer, Unsealable

log = structlog.get_logger(__name__)
ORDER_UPDATE = "order_update"
INQUIRY_REPLY = "inquiry_reply"
# Deliveries whose content is secret or personal (a sealed token, a sealed reply): dropped once sent.
FORGET_AFTER_SEND = frozenset({messages.VERIFY_EMAIL, messages.PASSWORD_RESET, INQUIRY_REPLY})
Suppressed = Callable[[MailerStore, str], Awaitable[bool]]


@dataclass(frozen=True)
class Draft:
    mail: str
    variables: dict
    locale: str | None = None  # None: the language the mailer knows for the subject
    headers: dict[str, str] | None = None


def content_of(row: Row) -> dict:
    value = row["content"]
    if value is None:
        return {}
    return json.loads(value) if isinstance(value, str) else dict(value)


class MailWriter:
    def __init__(self, settings: MailerSettings, templates: Templates, personal: PersonalFields,
                 is_suppressed: Suppressed) -> None:
        self._settings = settings
        self._templates = templates
        self._personal = personal
        self._is_suppressed = is_suppressed
        self._tokens = Sealer(settings.mail_token_secret, "assent-mail-token")
        self._sender_name = messages.sender_name(settings.mail_from)

    async def write(self, store: MailerStore, row: Row) -> tuple[str, EmailMessage] | None:
        """The address and the mail, or None when it must not go out any more (erased, suppressed,
        unsubscribed, expired)."""
        content = content_of(row)
        reply = InquiryAnswered.model_validate(content["event"]) if row["kind"] == INQUIRY_REPLY else None
        address = await self._address(store, row, reply)
        if address is None or await self._is_suppressed(store, address):
            return None
        draft = await self._draft(store, row, content, reply)
        if draft is None:
            return None
        locale = draft.locale or await store.locale_of(row["subject_id"])
        rendered = self._templates.render(draft.mail, self._templates.choose_locale(draft.mail, locale),
                                          {**draft.variables, "sender_name": self._sender_name})
        return address, messages.compose(self._settings.mail_from, address, row["delivery_id"], rendered,
                                         draft.headers)

    async def _address(self, store: MailerStore, row: Row, reply: InquiryAnswered | None) -> str | None:
        if reply is not None and reply.email is not None:  # an anonymous person's volunteered address
            try:
                return await self._personal.open(reply, "email")
            except SubjectErased:
                return None
        # A user's current address: a change of address after the event still reaches them.
        return await store.email_of(reply.user_id if reply is not None else row["subject_id"])

    async def _draft(self, store: MailerStore, row: Row, content: dict,
                     reply: InquiryAnswered | None) -> Draft | None:
        s, kind = self._settings, row["kind"]
        if kind == "newsletter":
            return await self._newsletter(store, row, content)
        if kind in messages.LINK_KINDS.values():
            return self._link_mail(row, content)
        if kind == ORDER_UPDATE:
            return Draft(ORDER_UPDATE, {"order_id": content["order_id"], "status": content["status"],
                                        "occurred_at": datetime.fromisoformat(content["occurred_at"]),
                                        "my_data_url": f"{s.site_url}/my-data"})
        if reply is not None:
            return await self._reply(reply)
        return Draft("welcome", {"my_data_url": f"{s.site_url}/my-data"})

    async def _newsletter(self, store: MailerStore, row: Row, content: dict) -> Draft | None:
        consent = await store.consent_of(row["subject_id"], "newsletter", domain.FIRST_PARTY)
        if consent is None or not consent.granted:
            return None
        s = self._settings
        token = messages.unsubscribe_token(s.signing_secret, row["subject_id"], "newsletter")
        headers = messages.unsubscribe_headers(f"{s.public_url}/v1/unsubscribe?token={token}")
        landing = f"{s.site_url}/unsubscribe?token={token}"
        if content.get("mail") == "policy_change":
            return Draft("policy_change", {
                "title": content["title"], "summary": content["summary"], "version": content["version"],
                "effective_on": datetime.fromisoformat(content["effective_at"]), "unsubscribe_url": landing,
            }, headers=headers)
        return Draft("newsletter", {"title": content["title"], "body": content["body"], "unsubscribe_url": landing},
                     headers=headers)

    def _link_mail(self, row: Row, content: dict) -> Draft | None:
        """The mail with its single-use link, or None when the link has expired or cannot be opened."""
        if datetime.fromisoformat(content["expires_at"]) <= datetime.now(UTC):
            return None
        try:
            token = self._tokens.open(content["sealed_token"], f"{content['event_type']}:{row['subject_id']}")
        except Unsealable:
            log.error("mail token cannot be opened; is ASSENT_MAIL_TOKEN_SECRET the same as identity's?",
                      delivery_id=str(row["delivery_id"]))
            return None
        if row["kind"] == messages.VERIFY_EMAIL:
            return Draft("verification", {"link": f"{self._settings.site_url}/verify?token={token}"},
                         content.get("locale"))
        return Draft("reset", {"link": f"{self._settings.site_url}/reset?token={token}"}, content.get("locale"))

    async def _reply(self, reply: InquiryAnswered) -> Draft | None:
        try:
            body = await self._personal.open(reply, "body")
            reply_url = await self._personal.open(reply, "reply_url")
        except SubjectErased:
            return None
        return Draft(INQUIRY_REPLY, {"reference": reply.reference, "body": body, "reply_url": reply_url},
                     reply.locale, messages.thread_headers(reply.inquiry_id, reply.message_id, reply.earlier_replies))
