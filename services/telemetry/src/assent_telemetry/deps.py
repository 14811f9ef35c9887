"""The collaborators telemetry's composition root builds, as typed route dependencies (`Annotated[..., Depends]`)."""

from dataclasses import dataclass
from typing import Annotated

from assent_shared.clients import Forwarding
from assent_shared.wiring import wired
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


Store = Annotated[Telemetries, wired("telemetries")]
Settings = Annotated[TelemetrySettings, wired("settings")]
IngestDep = Annotated[Ingest, wired("ingest")]
ClockDep = Annotated[Clock, wired("clock")]
ForwardingDep = Annotated[Forwarding, wired("forwarding")]
