"""The mailer's Kafka subscribers: which event goes to which use case, on a store over the inbox's transaction."""

from functools import partial

from assent_mailer import handlers, transactional
from assent_mailer.domain import SuppressionKeys
from assent_mailer.storage import PgMailerStore
from assent_mailer.wakeup import WorkArrived
from assent_shared import kafka, topics
from assent_shared.bootstrap import Runtime
from assent_shared.events import (
    ConsentGranted, ConsentRevoked, EmailVerificationRequested, InquiryAnswered, InquiryErased, OrderStatusChanged,
    PasswordResetRequested, PolicyUpdated, UserEmailChanged, UserEmailChangedV2, UserErased, UserRegistered,
    UserRegisteredV2,
)
from assent_shared.inbox import BatchHandler, Handler
from assent_shared.personal import PersonalFields
from assent_shared.uow import in_batch_inbox, in_inbox


def register(runtime: Runtime, personal: PersonalFields, suppressions: SuppressionKeys, work: WorkArrived) -> None:
    on = partial(in_inbox, PgMailerStore)
    registered = on(handlers.apply_user_registered, personal=personal, work=work)
    changed = on(handlers.apply_email_changed, personal=personal, work=work)
    link = on(handlers.apply_link_requested, work=work)
    # A batch of consent events is planned in set-based statements, not one plan per event.
    consents = in_batch_inbox(PgMailerStore, handlers.apply_consents, work=work)
    kafka.subscribe(runtime.broker, runtime.settings, topics.USERS, runtime.inbox, {
        "UserRegistered": Handler(UserRegistered, registered),
        "UserEmailChanged": Handler(UserEmailChanged, changed),
        "UserRegisteredV2": Handler(UserRegisteredV2, registered),
        "UserEmailChangedV2": Handler(UserEmailChangedV2, changed),
        "UserErased": Handler(UserErased, on(handlers.apply_user_erased, suppressions=suppressions, work=work)),
        "EmailVerificationRequested": Handler(EmailVerificationRequested, link),
        "PasswordResetRequested": Handler(PasswordResetRequested, link),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.CONSENTS, runtime.inbox, {
        "ConsentGranted": BatchHandler(ConsentGranted, consents, traced=True),
        "ConsentRevoked": BatchHandler(ConsentRevoked, consents, traced=True),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.POLICIES, runtime.inbox, {
        "PolicyUpdated": Handler(PolicyUpdated, on(handlers.apply_policy_updated, work=work)),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.ORDERS, runtime.inbox, {
        "OrderStatusChanged": Handler(OrderStatusChanged, on(transactional.apply_order_status_changed, work=work)),
    })
    kafka.subscribe(runtime.broker, runtime.settings, topics.INQUIRIES, runtime.inbox, {
        "InquiryAnswered": Handler(InquiryAnswered, on(transactional.apply_inquiry_answered, work=work)),
        "InquiryErased": Handler(InquiryErased, on(transactional.apply_inquiry_erased)),
    })
