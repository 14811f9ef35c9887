"""The collaborators policy's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from assent_policy.ports import Policies
from assent_policy.settings import PolicySettings
from assent_shared.wiring import wired


@dataclass(frozen=True)
class Wiring:
    policies: Policies
    settings: PolicySettings


Store = Annotated[Policies, wired("policies")]
Settings = Annotated[PolicySettings, wired("settings")]
