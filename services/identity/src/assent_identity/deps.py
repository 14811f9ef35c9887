"""The collaborators identity's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assent_identity.export import Exporter
from assent_identity.keyowner import DataKeys
from assent_identity.links import MailLinks
from assent_identity.passwords import Passwords
from assent_identity.ports import Identities
from assent_identity.settings import IdentitySettings
from assent_identity.tokens import KeyVault
from assent_shared.clients import Forwarding


@dataclass(frozen=True)
class Wiring:
    identities: Identities
    settings: IdentitySettings
    passwords: Passwords
    vault: KeyVault
    keys: DataKeys
    links: MailLinks
    exporter: Exporter
    forwarding: Forwarding


def _wiring(request: Request) -> Wiring:
    return request.app.state.service


Wired = Annotated[Wiring, Depends(_wiring)]


def _identities(wiring: Wired) -> Identities:
    return wiring.identities


def _settings(wiring: Wired) -> IdentitySettings:
    return wiring.settings


def _passwords(wiring: Wired) -> Passwords:
    return wiring.passwords


def _vault(wiring: Wired) -> KeyVault:
    return wiring.vault


def _keys(wiring: Wired) -> DataKeys:
    return wiring.keys


def _links(wiring: Wired) -> MailLinks:
    return wiring.links


def _exporter(wiring: Wired) -> Exporter:
    return wiring.exporter


def _forwarding(wiring: Wired) -> Forwarding:
    return wiring.forwarding


Store = Annotated[Identities, Depends(_identities)]
Settings = Annotated[IdentitySettings, Depends(_settings)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
Vault = Annotated[KeyVault, Depends(_vault)]
Keys = Annotated[DataKeys, Depends(_keys)]
Links = Annotated[MailLinks, Depends(_links)]
ExporterDep = Annotated[Exporter, Depends(_exporter)]
ForwardingDep = Annotated[Forwarding, Depends(_forwarding)]
