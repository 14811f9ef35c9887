"""The collaborators support's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assent_shared.personal import PersonalFields
from assent_support.handlers import KeyOwner
from assent_support.ports import Supports
from assent_support.settings import SupportSettings


@dataclass(frozen=True)
class Wiring:
    supports: Supports
    settings: SupportSettings
    personal: PersonalFields
    owner: KeyOwner


def _wiring(request: Request) -> Wiring:
    return request.app.state.service


Wired = Annotated[Wiring, Depends(_wiring)]


def _supports(wiring: Wired) -> Supports:
    return wiring.supports


def _settings(wiring: Wired) -> SupportSettings:
    return wiring.settings


def _personal(wiring: Wired) -> PersonalFields:
    return wiring.personal


def _owner(wiring: Wired) -> KeyOwner:
    return wiring.owner


Store = Annotated[Supports, Depends(_supports)]
Settings = Annotated[SupportSettings, Depends(_settings)]
Personal = Annotated[PersonalFields, Depends(_personal)]
Owner = Annotated[KeyOwner, Depends(_owner)]
