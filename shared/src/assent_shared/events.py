"""The event catalog of contract v1.

Every event is a frozen pydantic model. A new version of an event is a new model with a new
name; a published model is never edited except to add an optional field.
"""

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from assent_shared import topics
from assent_shared.personal import SealedField

# `recipient` of a consent or a delivery that is not a third-party processor: us.
FIRST_PARTY = "first_party"
ConsentSource = Literal["signup", "user", "unsubscribe_link", "gpc", "admin"]
DeviceConsentSource = Literal["visitor", "gpc"]
AcceptanceHow = Literal["signup", "continued_use", "explicit"]
InquiryCategory = Literal["question", "support_request", "privacy_question", "feedback"]
OrderStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]


class Event(BaseModel):
    """Base of all events: immutable, and tolerant of fields added by newer producers.

    A subclass names its topic and which of its fields is the Kafka key and which (if any) the
    user it is about (`ce_subject`); its `ce_source` is the topic's owner (`/assent/<service>`).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: ClassVar[topics.TopicSpec]
    key_field: ClassVar[str]
    subject_field: ClassVar[str | None] = None

    def key(self) -> str:
        return str(getattr(self, self.key_field))

    def subject(self) -> str | None:
        """The user id this event is about, for the `ce_subject` header, where there is one."""
        value = getattr(self, self.subject_field) if self.subject_field else None
        return None if value is None else str(value)

    def topic_spec(self) -> topics.TopicSpec:
        return self.topic

    def source_uri(self) -> str:
        return self.topic_spec().source

    @classmethod
    def travels_on(cls) -> tuple[topics.TopicSpec, ...]:
        return (cls.topic,)


class UserRegistered(Event):
    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="Identity's id of the new account.")
    email: str = Field(description="The normalized email address the user submitted.")
    registered_at: datetime = Field(description="When the account was created (UTC).")
    policy_version: int = Field(description="Version of the privacy policy in force at signup.")
    newsletter_opt_in: bool = Field(
        description="True unless the user opted out at signup: signing up opts in to the newsletter."
    )


class UserEmailChanged(Event):
    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The account whose email changed.")
    email: str = Field(description="The new normalized email address.")
    changed_at: datetime = Field(description="When the change was made (UTC).")


class UserRegisteredV2(Event):
    """UserRegistered with its personal fields sealed under the user's data key (docs/personal-data.md)."""

    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="Identity's id of the new account.")
    email: SealedField = Field(description="The normalized email address, sealed (AES-GCM, the user's data key).")
    display_name: SealedField | None = Field(default=None, description="The display name if the user gave one, sealed.")
    locale: str | None = Field(
        default=None, max_length=35, description="The user's preferred language (BCP 47, e.g. `en`, `de`), if given."
    )
    registered_at: datetime = Field(description="When the account was created (UTC).")
    policy_version: int = Field(description="Version of the privacy policy in force at signup.")
    newsletter_opt_in: bool = Field(
        description="True unless the user opted out at signup: signing up opts in to the newsletter."
    )


class UserEmailChangedV2(Event):
    """UserEmailChanged with the new address sealed under the user's data key."""

    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The account whose email changed.")
    email: SealedField = Field(description="The new normalized email address, sealed.")
    changed_at: datetime = Field(description="When the change was made (UTC).")


class UserErased(Event):
    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The erased account; every service removes its personal data.")
    erased_at: datetime = Field(description="When the user asked for erasure (UTC).")


class SessionsRevoked(Event):
    """Sessions ended (logout, disable, erasure, password change): every service refuses their
    access tokens from now on, instead of until they expire."""

    topic = topics.SESSIONS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="Whose sessions ended.")
    session_ids: tuple[UUID, ...] = Field(
        default=(), description="The sessions ended (the `sid` of their tokens); empty: every session of the user "
                                "whose tokens were issued up to `revoked_at`."
    )
    revoked_at: datetime = Field(description="When the sessions ended (UTC).")
    expires_at: datetime = Field(description="When the last access token of these sessions expires; "
                                             "the revocation may be forgotten after it.")


class _MailTokenIssued(Event):
    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The account the mail goes to (the mailer knows its address).")
    sealed_token: str = Field(
        description="The single-use token, sealed (AES-GCM, `assent_shared.sealing`, context `assent-mail-token`, "
                    "bound to `<event type>:<user id>`) under ASSENT_MAIL_TOKEN_SECRET, which only identity and "
                    "the mailer hold: unreadable on the topic. Identity stores only a hash of it."
    )
    expires_at: datetime = Field(description="When the token stops working (UTC).")
    requested_at: datetime = Field(description="When it was issued (UTC).")
    locale: str | None = Field(default=None, description="The user's language (BCP 47), for the mail.")


class EmailVerificationRequested(_MailTokenIssued):
    """Identity asks the mailer to send a link that proves the user receives mail at their address."""


class PasswordResetRequested(_MailTokenIssued):
    """Someone asked to reset the account's password; the mailer sends the reset link to its address."""


class EmailVerified(Event):
    """The user proved they receive mail at the account's current address (a verification link was used)."""

    topic = topics.USERS
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The account whose address is now verified.")
    verified_at: datetime = Field(description="When the link was used (UTC).")
    newsletter_opt_in: bool = Field(
        description="True when the signup's newsletter opt-in takes effect now: the first verification of an "
                    "account that did not opt out. The consent service records the grant with this event as evidence."
    )


class _ConsentChange(Event):
    topic = topics.CONSENTS
    key_field = subject_field = "subject_id"

    subject_id: UUID = Field(description="The user the consent belongs to.")
    purpose: str = Field(description="What the data is used for, e.g. `newsletter`.")
    recipient: str = Field(description="`first_party` or the id of a registered processor.")
    seq: int = Field(ge=1, description="Per-subject sequence, strictly increasing over all consent events.")
    policy_version: int = Field(description="Version of the privacy policy in force at the change.")
    source: ConsentSource = Field(
        description="Where the change came from: signup, user, unsubscribe_link, gpc, admin."
    )
    occurred_at: datetime = Field(description="When the change happened (UTC).")
    evidence: str | None = Field(
        default=None, description="What proves the change, where an event does: e.g. `EmailVerified:<ce_id>` for "
                                  "the newsletter grant of signup, which takes effect on a verified address."
    )


class ConsentGranted(_ConsentChange):
    """The subject allowed `recipient` to use their data for `purpose`."""


class ConsentRevoked(_ConsentChange):
    """The subject withdrew the permission; nothing more goes out for it."""


class _DeviceConsentChange(Event):
    topic = topics.CONSENTS
    key_field = "device_id"

    device_id: str = Field(description="Opaque random id (>= 128 bits, urlsafe) the Site made for a visitor's "
                                       "browser; the event is keyed by it. No account, no personal data.")
    purpose: str = Field(description="A device purpose, e.g. `cookies` (the analytics cookie / device id).")
    seq: int = Field(ge=1, description="Per-device sequence, strictly increasing over the device's consent events.")
    policy_version: int = Field(description="Version of the privacy policy in force at the change.")
    source: DeviceConsentSource = Field(description="`visitor` (the visitor's choice) or `gpc` (Global Privacy "
                                                    "Control withdrew or refused a third-party purpose).")
    gpc: bool = Field(description="Whether the request carried `Sec-GPC: 1`.")
    occurred_at: datetime = Field(description="When the change happened (UTC).")


class DeviceConsentGranted(_DeviceConsentChange):
    """A visitor without an account allowed `purpose` for their browser (keyed by device id)."""


class DeviceConsentRevoked(_DeviceConsentChange):
    """A visitor without an account refused or withdrew `purpose` for their browser (keyed by device id)."""


class PolicyUpdated(Event):
    topic = topics.POLICIES
    key_field = "policy_id"

    policy_id: str = Field(description="The policy document, e.g. `privacy`.")
    version: int = Field(ge=1, description="The version that took effect.")
    title: str = Field(description="Title of the version.")
    summary: str = Field(description="What changed, in a sentence or two.")
    material: bool = Field(default=False, description="Whether the change is material.")
    effective_at: datetime = Field(description="When the version took effect (UTC).")
    published_at: datetime = Field(description="When an admin published it (UTC).")


class PolicyAccepted(Event):
    topic = topics.ACCEPTANCES
    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The user who accepted.")
    policy_id: str = Field(description="The policy document.")
    version: int = Field(ge=1, description="The accepted version.")
    accepted_at: datetime = Field(description="When it was accepted (UTC).")
    how: AcceptanceHow = Field(description="signup, continued_use or explicit.")


class PageViewed(Event):
    """A visit, with nothing that identifies a person: no IP address, no user id."""

    topic = topics.HITS
    key_field = "site_id"

    site_id: str = Field(description="The configured site the hit belongs to.")
    path: str = Field(description="Path of the page viewed, without query string.")
    referrer: str | None = Field(default=None, description="Host of the referring site, if any.")
    browser: str = Field(description="Browser family from the user agent.")
    os: str = Field(description="Operating system family from the user agent.")
    device_type: str = Field(description="desktop, mobile, tablet, bot or other.")
    isp: str | None = Field(default=None, description="Network/ISP name from an offline ASN database.")
    visitor_hash: str = Field(description="Daily-rotating visitor hash or first-party cookie id.")
    occurred_at: datetime = Field(description="When the hit was accepted (UTC).")
    network_unit: str | None = Field(
        default=None, description="Daily-rotating keyed hash of the visitor's network (IPv4 /24, IPv6 /48): "
                                  "what partner reports count, so one network is one unit however many visitors it fakes.",
    )


class _DeliveryEvent(Event):
    topic = topics.DELIVERIES
    key_field = subject_field = "subject_id"

    subject_id: UUID = Field(description="The user the delivery concerns.")
    delivery_id: UUID = Field(description="Unique per delivery; processors drop repeats by it.")
    kind: str = Field(description="What was delivered, e.g. `welcome` or `subject.shared`.")
    consent_event_id: str | None = Field(
        default=None, description="`ce_id` of the consent event that allowed it, where one applies."
    )
    recipient: str = Field(default=FIRST_PARTY, description="`first_party` or the processor id.")
    occurred_at: datetime = Field(description="When it happened (UTC).")


class EmailSent(_DeliveryEvent):
    """An email left through SMTP."""


class EmailBounced(_DeliveryEvent):
    """An email could not be delivered; a hard bounce suppresses the address."""


class ProcessorDelivered(_DeliveryEvent):
    """A processor acknowledged `subject.shared`."""


class ProcessorRevocationSent(_DeliveryEvent):
    """A processor acknowledged `subject.revoked`."""


class DeliveryAttemptFailed(_DeliveryEvent):
    """An attempt failed (SMTP or processor error); the delivery will be retried."""

    attempt: int = Field(ge=1, description="Which attempt failed.")
    reason: str = Field(description="Kind of failure, e.g. `HTTP 503`; never personal data.")


class DeliveryCancelled(_DeliveryEvent):
    """A waiting delivery will not go out: its consent was revoked, or its subject erased."""


class DeliveryFailed(_DeliveryEvent):
    """A delivery failed as many times as the mailer allows (ASSENT_MAX_DELIVERY_ATTEMPTS); it is not retried again."""

    attempts: int = Field(ge=1, description="How many attempts were made.")
    reason: str = Field(description="Kind of the last failure, e.g. `SMTP 451`; never personal data.")


class EmailComplained(_DeliveryEvent):
    """The recipient reported the mail as unwanted: the address is suppressed and the newsletter withdrawn."""


class UnsubscribeRequested(Event):
    """A recipient used a one-click unsubscribe link; the consent service records the revocation."""

    topic = topics.DELIVERIES
    key_field = subject_field = "subject_id"

    subject_id: UUID = Field(description="The user who unsubscribed.")
    purpose: str = Field(description="The purpose withdrawn, e.g. `newsletter`.")
    recipient: str = Field(default=FIRST_PARTY, description="Whose mail it was.")
    requested_at: datetime = Field(description="When the link was used (UTC).")


class ProcessorRegistered(Event):
    topic = topics.PROCESSORS
    key_field = "processor_id"

    processor_id: str = Field(description="The processor's id, used as a consent recipient.")
    name: str = Field(description="Display name.")
    purposes: tuple[str, ...] = Field(description="Purposes the processor may receive data for.")


class _InquiryEvent(Event):
    topic = topics.INQUIRIES
    key_field = "inquiry_id"

    inquiry_id: UUID = Field(description="Support's id of the inquiry (the thread).")


class InquiryReceived(_InquiryEvent):
    """Someone wrote to us. Carries no address and no message text: no consumer needs them."""

    subject_field = "user_id"

    reference: str = Field(description="The short reference shown to the person, e.g. `Q-7K3M9P`.")
    category: InquiryCategory = Field(description="The inquiry's topic: question, support_request, privacy_question, feedback.")
    user_id: UUID | None = Field(default=None, description="The signed-in user who wrote, if any.")
    reply_by_mail: bool = Field(
        description="Whether answers go out by mail: an address was volunteered, or a signed-in user asked for a reply."
    )
    received_at: datetime = Field(description="When it was received (UTC).")


class InquiryAnswered(_InquiryEvent):
    """An admin replied; the mailer sends the reply, threaded, when `reply_by_mail`."""

    subject_field = "user_id"

    reference: str = Field(description="The inquiry's reference, for the mail's subject line.")
    message_id: UUID = Field(description="The reply's id; its mail's Message-ID is `<reply-{message_id}@...>`.")
    user_id: UUID | None = Field(default=None, description="The signed-in author: the mail goes to their current address.")
    reply_by_mail: bool = Field(description="False when the person gave no address: the reply is only shown signed in.")
    locale: str = Field(default="en", description="Language of the mail (BCP 47).")
    earlier_replies: tuple[UUID, ...] = Field(
        default=(), description="`message_id`s of the earlier replies, oldest first: the mail's In-Reply-To/References."
    )
    # Sealed under the data key of the user (signed in) or of the inquiry (anonymous; support erases it).
    email: SealedField | None = Field(default=None, description="The address an anonymous person volunteered, sealed.")
    body: SealedField = Field(description="The reply's text, sealed.")
    reply_url: SealedField = Field(description="The link (with a single-purpose token) where the person answers, sealed.")
    answered_at: datetime = Field(description="When the admin replied (UTC).")


class InquiryFollowedUp(_InquiryEvent):
    """The person answered a reply (by the mail's link or signed in); the thread is open again."""

    message_id: UUID = Field(description="Id of the person's message.")
    via: Literal["mail_link", "signed_in"] = Field(description="How the person answered.")
    added_at: datetime = Field(description="When (UTC).")


class InquiryClosed(_InquiryEvent):
    """An admin closed the inquiry."""

    closed_at: datetime = Field(description="When (UTC).")


class InquiryErased(_InquiryEvent):
    """Support removed an inquiry's personal data; the mailer forgets the address it was given for it."""

    erased_at: datetime = Field(description="When (UTC).")


class OrderStatusChanged(Event):
    """Published by a shop's order service; the mailer sends the order update to the user's current address in
    their language. Transactional: no marketing consent needed, never sent to a third-party processor, but
    suppression and erasure hold; a user the mailer does not know is dead-lettered. Chosen over a general
    TransactionalMailRequested (template id + variables): producers state facts, the mailer owns the wording
    and languages of its mails (its templates), and no producer can make it send free text to anyone."""

    topic = topics.ORDERS
    key_field = "order_id"
    subject_field = "user_id"

    order_id: str = Field(min_length=1, max_length=64, description="The shop's order number, shown in the mail.")
    user_id: UUID = Field(description="The customer; the mail goes to their current address.")
    status: OrderStatus = Field(description="placed, paid, shipped, delivered, cancelled or refunded.")
    occurred_at: datetime = Field(description="When the status changed (UTC).")


# The one list of services that hold personal data and confirm an erasure, each on its own topic
# (key: user id). Identity, which deletes the account and its data keys itself, confirms too.
ERASURE_TOPICS = {"consent": topics.CONSENTS, "mailer": topics.DELIVERIES, "policy": topics.ACCEPTANCES,
                  "support": topics.INQUIRIES}
ERASURE_CONFIRMERS = ("identity", *ERASURE_TOPICS)


class ErasureConfirmed(Event):
    """A service removed or anonymized what it held about an erased user.

    Each service publishes it on its own topic (key: user id); identity gathers the confirmations
    to show when an erasure has completed everywhere.
    """

    key_field = subject_field = "user_id"

    user_id: UUID = Field(description="The erased user.")
    service: Literal[tuple(ERASURE_TOPICS)] = Field(  # type: ignore[valid-type]
        description="The service that confirms; the event travels on that service's topic."
    )
    confirmed_at: datetime = Field(description="When that service finished (UTC).")

    def topic_spec(self) -> topics.TopicSpec:
        return ERASURE_TOPICS[self.service]

    @classmethod
    def travels_on(cls) -> tuple[topics.TopicSpec, ...]:
        return tuple(ERASURE_TOPICS.values())


# Old versions that carry a personal field in the clear; producers publish their V2 successors.
PLAINTEXT_PERSONAL_DATA = frozenset({"UserRegistered", "UserEmailChanged"})


CATALOG: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        UserRegistered,
        UserEmailChanged,
        UserRegisteredV2,
        UserEmailChangedV2,
        UserErased,
        SessionsRevoked,
        EmailVerificationRequested,
        PasswordResetRequested,
        EmailVerified,
        ConsentGranted,
        ConsentRevoked,
        DeviceConsentGranted,
        DeviceConsentRevoked,
        PolicyUpdated,
        PolicyAccepted,
        PageViewed,
        EmailSent,
        EmailBounced,
        ProcessorDelivered,
        ProcessorRevocationSent,
        DeliveryAttemptFailed,
        DeliveryCancelled,
        DeliveryFailed,
        EmailComplained,
        UnsubscribeRequested,
        ProcessorRegistered,
        InquiryReceived,
        InquiryAnswered,
        InquiryFollowedUp,
        InquiryClosed,
        InquiryErased,
        OrderStatusChanged,
        ErasureConfirmed,
    )
}
