"""The collaborators consent's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assent_consent.ports import Consents
from assent_consent.receipts import ReceiptSigner
from assent_consent.settings import ConsentSettings
from assent_shared.auth import Principal, authenticate
from assent_shared.bootstrap import Runtime
from assent_shared.wiring import runtime, wired


@dataclass(frozen=True)
class Wiring:
    consents: Consents
    settings: ConsentSettings
    signer: ReceiptSigner


async def _principal(request: Request, rt: Runtime = Depends(runtime)) -> Principal:
    return await authenticate(request, rt.verifier, rt.settings.admin_token)


Store = Annotated[Consents, wired("consents")]
Settings = Annotated[ConsentSettings, wired("settings")]
Signer = Annotated[ReceiptSigner, wired("signer")]
Who = Annotated[Principal, Depends(_principal)]
