"""The collaborators the Site's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass, fields
from typing import Annotated

from jinja2 import Environment

from assent_shared.clients import Forwarding
from assent_shared.wiring import wired
from assent_site.ports import ConsentApi, IdentityApi, MailerApi, PolicyApi, SupportApi, TelemetryApi
from assent_site.sealing import CsrfTokens, Sealer
from assent_site.settings import SiteSettings


@dataclass(frozen=True)
class Upstreams:
    """The services the Site calls: HTTP clients in production, `fakes.memory_upstreams()` in the unit lane."""

    identity: IdentityApi
    consent: ConsentApi
    mailer: MailerApi
    policy: PolicyApi
    telemetry: TelemetryApi
    support: SupportApi


@dataclass(frozen=True)
class Wiring(Upstreams):
    settings: SiteSettings
    sealer: Sealer
    csrf: CsrfTokens
    templates: Environment
    forwarding: Forwarding

    @classmethod
    def of(cls, upstreams: Upstreams, **rest) -> "Wiring":
        return cls(**{f.name: getattr(upstreams, f.name) for f in fields(Upstreams)}, **rest)


Settings = Annotated[SiteSettings, wired("settings")]
Identity = Annotated[IdentityApi, wired("identity")]
Consent = Annotated[ConsentApi, wired("consent")]
Mailer = Annotated[MailerApi, wired("mailer")]
Policy = Annotated[PolicyApi, wired("policy")]
Telemetry = Annotated[TelemetryApi, wired("telemetry")]
Support = Annotated[SupportApi, wired("support")]
CookieSealer = Annotated[Sealer, wired("sealer")]
