"""The collaborators identity's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from assent_identity.export import Exporter
from assent_identity.keyowner import DataKeys
from assent_identity.links import MailLinks
from assent_identity.passwords import Passwords
from assent_identity.ports import Identities
from assent_identity.settings import IdentitySettings
from assent_identity.tokens import KeyVault
from assent_shared.clients import Forwarding
from assent_shared.wiring import wired


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


Store = Annotated[Identities, wired("identities")]
Settings = Annotated[IdentitySettings, wired("settings")]
PasswordsDep = Annotated[Passwords, wired("passwords")]
Vault = Annotated[KeyVault, wired("vault")]
Keys = Annotated[DataKeys, wired("keys")]
Links = Annotated[MailLinks, wired("links")]
ExporterDep = Annotated[Exporter, wired("exporter")]
ForwardingDep = Annotated[Forwarding, wired("forwarding")]
