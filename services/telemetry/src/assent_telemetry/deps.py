"""The collaborators telemetry's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from assent_shared.clients import Forwarding
from assent_telemetry.handlers import Clock, Ingest
from assent_telemetry.ports import Telemetries
from assent_telemetry.settings import TelemetrySettings


@dataclass(frozen=True)
class Wiring:
    telemetries: Telemetries
    settings: TelemetrySettings
    ingest: Ingest
    clock: Clock
    forwarding: Forwarding


def _wiring(request: Request) -> Wiring:
    return request.app.state.service


Wired = Annotated[Wiring, Depends(_wiring)]


def _telemetries(wiring: Wired) -> Telemetries:
    return wiring.telemetries


def _settings(wiring: Wired) -> TelemetrySettings:
    return wiring.settings


def _ingest(wiring: Wired) -> Ingest:
    return wiring.ingest


def _clock(wiring: Wired) -> Clock:
    return wiring.clock


def _forwarding(wiring: Wired) -> Forwarding:
    return wiring.forwarding


Store = Annotated[Telemetries, Depends(_telemetries)]
Settings = Annotated[TelemetrySettings, Depends(_settings)]
IngestDep = Annotated[Ingest, Depends(_ingest)]
ClockDep = Annotated[Clock, Depends(_clock)]
ForwardingDep = Annotated[Forwarding, Depends(_forwarding)]
