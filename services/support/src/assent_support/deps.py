"""The collaborators support's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from assent_shared.personal import PersonalFields
from assent_shared.wiring import wired
from assent_support.handlers import KeyOwner
from assent_support.ports import Supports
from assent_support.settings import SupportSettings


@dataclass(frozen=True)
class Wiring:
    supports: Supports
    settings: SupportSettings
    personal: PersonalFields
    owner: KeyOwner


Store = Annotated[Supports, wired("supports")]
Settings = Annotated[SupportSettings, wired("settings")]
Personal = Annotated[PersonalFields, wired("personal")]
Owner = Annotated[KeyOwner, wired("owner")]
