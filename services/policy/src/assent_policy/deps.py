"""The collaborators policy's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assent_policy.ports import Policies
from assent_policy.settings import PolicySettings


@dataclass(frozen=True)
class Wiring:
    policies: Policies
    settings: PolicySettings


def _wiring(request: Request) -> Wiring:
    return request.app.state.service


def _policies(wiring: Annotated[Wiring, Depends(_wiring)]) -> Policies:
    return wiring.policies


def _settings(wiring: Annotated[Wiring, Depends(_wiring)]) -> PolicySettings:
    return wiring.settings


Store = Annotated[Policies, Depends(_policies)]
Settings = Annotated[PolicySettings, Depends(_settings)]
