"""Consent's rules, free of I/O."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from assent_shared.events import FIRST_PARTY
from assent_shared.events import ConsentSource as Source
from assent_shared.events import DeviceConsentSource as DeviceSource


class UnknownPurpose(ValueError):
    pass


class UnknownRecipient(ValueError):
    pass


class SubjectErased(ValueError):
    """The subject's account was erased; nothing is recorded for them any more."""


@dataclass(frozen=True)
class ChangeConsent:
    subject_id: UUID
    purpose: str
    recipient: str
    granted: bool
    source: Source
    evidence: str | None = None


@dataclass(frozen=True)
class ConsentState:
    subject_id: UUID
    purpose: str
    recipient: str
    granted: bool
    seq: int
    event_id: UUID
    updated_at: datetime


def check_target(purpose: str, recipient: str, purposes: set[str], processors: dict[str, set[str]]) -> None:
    """A consent names a configured purpose and first_party or a processor announced for that purpose."""
    if purpose not in purposes:
        raise UnknownPurpose(purpose)
    if recipient != FIRST_PARTY and purpose not in processors.get(recipient, set()):
        raise UnknownRecipient(recipient)


def is_change(current: ConsentState | None, granted: bool) -> bool:
    """Setting a consent to the state it already has changes nothing; no record means not granted."""
    return (current.granted if current else False) != granted


def under_gpc(cmd: ChangeConsent) -> ChangeConsent:
    """A request with Global Privacy Control cannot grant a third party anything: it stays withdrawn."""
    if cmd.granted and cmd.recipient != FIRST_PARTY:
        return ChangeConsent(cmd.subject_id, cmd.purpose, cmd.recipient, False, "gpc")
    return cmd


def third_party_grants(states: list[ConsentState]) -> list[ConsentState]:
    """What a Global Privacy Control signal withdraws: every grant to someone other than us."""
    return [s for s in states if s.granted and s.recipient != FIRST_PARTY]


@dataclass(frozen=True)
class ChangeDeviceConsent:
    device_id: str
    purpose: str
    granted: bool
    gpc: bool


@dataclass(frozen=True)
class DeviceConsentState:
    device_id: str
    purpose: str
    granted: bool
    seq: int
    event_id: UUID
    updated_at: datetime


def device_decision(cmd: ChangeDeviceConsent, third_party: set[str]) -> tuple[bool, DeviceSource]:
    """What a device's choice records: Global Privacy Control refuses a grant to a third party."""
    if cmd.gpc and cmd.granted and cmd.purpose in third_party:
        return False, "gpc"
    return cmd.granted, "visitor"


def gpc_withdrawals(states: list[DeviceConsentState], third_party: set[str]) -> list[DeviceConsentState]:
    """The device's grants a Global Privacy Control signal withdraws."""
    return [s for s in states if s.granted and s.purpose in third_party]
