"""The collaborators the mailer's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from assent_mailer.domain import SuppressionKeys
from assent_mailer.ports import Mailers
from assent_mailer.settings import MailerSettings
from assent_mailer.templating import Templates
from assent_mailer.wakeup import WorkArrived
from assent_shared.wiring import wired


@dataclass(frozen=True)
class Wiring:
    mailers: Mailers
    settings: MailerSettings
    suppressions: SuppressionKeys
    templates: Templates
    work: WorkArrived


Store = Annotated[Mailers, wired("mailers")]
Settings = Annotated[MailerSettings, wired("settings")]
Suppressions = Annotated[SuppressionKeys, wired("suppressions")]
TemplateSet = Annotated[Templates, wired("templates")]
Work = Annotated[WorkArrived, wired("work")]
