"""The mailer's Kafka subscribers."""

from assent_mailer.handlers import MailerHandlers
from assent_mailer.transactional import TransactionalMail
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import (
    ConsentGranted, ConsentRevoked, EmailVerificationRequested, InquiryAnswered, InquiryErased, OrderStatusChanged,
    PasswordResetRequested, PolicyUpdated, UserEmailChanged, UserEmailChangedV2, UserErased, UserRegistered,
    UserRegisteredV2,
)
from assent_shared.inbox import Handler


def register(runtime: Runtime, service: MailerHandlers, transactional: TransactionalMail) -> None:
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "UserRegistered": Handler(UserRegistered, service.apply_user_registered),
        "UserEmailChanged": Handler(UserEmailChanged, service.apply_email_changed),
        "UserRegisteredV2": Handler(UserRegisteredV2, service.apply_user_registered),
        "UserEmailChangedV2": Handler(UserEmailChangedV2, service.apply_email_changed),
        "UserErased": Handler(UserErased, service.apply_user_erased),
        "EmailVerificationRequested": Handler(EmailVerificationRequested, service.apply_link_requested),
        "PasswordResetRequested": Handler(PasswordResetRequested, service.apply_link_requested),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.CONSENTS, runtime.inbox, {
        "ConsentGranted": Handler(ConsentGranted, service.apply_consent),
        "ConsentRevoked": Handler(ConsentRevoked, service.apply_consent),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.POLICIES, runtime.inbox, {
        "PolicyUpdated": Handler(PolicyUpdated, service.apply_policy_updated),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.ORDERS, runtime.inbox, {
        "OrderStatusChanged": Handler(OrderStatusChanged, transactional.apply_order_status_changed),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.INQUIRIES, runtime.inbox, {
        "InquiryAnswered": Handler(InquiryAnswered, transactional.apply_inquiry_answered),
        "InquiryErased": Handler(InquiryErased, transactional.apply_inquiry_erased),
    })
