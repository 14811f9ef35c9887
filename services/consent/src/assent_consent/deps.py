"""The collaborators consent's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assent_consent.ports import Consents
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_shared.auth import Principal, authenticate
from assent_shared.bootstrap import Runtime


@dataclass(frozen=True)
class Wiring:
    consents: Consents
    settings: ConsentSettings
    signer: ReceiptSigner


def _wiring(request: Request) -> Wiring:
    return request.app.state.service


def _consents(wiring: Annotated[Wiring, Depends(_wiring)]) -> Consents:
    return wiring.consents


def _settings(wiring: Annotated[Wiring, Depends(_wiring)]) -> ConsentSettings:
    return wiring.settings


def _signer(wiring: Annotated[Wiring, Depends(_wiring)]) -> ReceiptSigner:
    return wiring.signer


async def _principal(request: Request) -> Principal:
    runtime: Runtime = request.app.state.runtime
    return await authenticate(request, runtime.verifier, runtime.settings.admin_token)


Store = Annotated[Consents, Depends(_consents)]
Settings = Annotated[ConsentSettings, Depends(_settings)]
Signer = Annotated[ReceiptSigner, Depends(_signer)]
Who = Annotated[Principal, Depends(_principal)]
