"""What telemetry's use cases need of storage: `storage.PgTelemetryStore` on PostgreSQL,
`fakes.MemoryTelemetryStore` in memory. Every method runs in the caller's unit of work."""

from collections import Counter
from collections.abc import Mapping
from datetime import date
from typing import Any, Protocol

from assent_shared.uow import Publishing, UnitOfWork
from assent_telemetry.domain import Group, RollupKey
from assent_telemetry.partner import Cell, UnitHits

Row = Mapping[str, Any]


class TelemetryStore(Publishing, Protocol):
    async def salt_for(self, day: date, fresh: bytes) -> bytes:
        """The day's salt; `fresh` becomes it when this replica is the first to need one."""

    async def delete_salts_before(self, day: date) -> None: ...

    async def prune_inbox(self, topic: str, keep_days: int) -> None: ...

    async def add_hits(self, hits: Counter[RollupKey]) -> None: ...

    async def add_visitors(self, visitors: set[tuple[str, date, str, str, str]]) -> None: ...

    async def groups(self, site_id: str, first: date, last: date, dimension: str,
                     limit: int) -> list[Group]:
        """Hits and visitors per value over whole days; a visitor counts once per day they came."""

    async def hourly(self, site_id: str, first: date, last: date,
                     dimension: str) -> list[Row]: ...

    async def add_unit_hits(self, rows: list[UnitHits]) -> None: ...

    async def open_days(self, latest_final: date) -> list[tuple[str, date]]:
        """(site, day) pairs that are final by the clock but still hold per-visitor rows."""

    async def claim_final_day(self, site_id: str, day: date) -> bool:
        """True for the one caller that finalizes the day; replicas and repeats get False."""

    async def unit_rows(self, site_id: str, day: date) -> list[UnitHits]: ...

    async def store_partner_cells(self, site_id: str, day: date, cells: list[Cell]) -> None: ...

    async def drop_visitor_rows(self, site_id: str, day: date, count_first: bool) -> None:
        """Per-visitor rows of a final day go; their distinct counts stay (when the day is finalized now)."""

    async def partner_cells(self, site_id: str, day: date, dimension: str) -> list[Cell]: ...

    async def prune_aggregates(self, before: date) -> None:
        """Aggregates (no visitor in them) are kept for a retention period too."""

    async def apply_device_consent(self, device_hash: str, purpose: str, granted: bool,
                                   seq: int) -> None:
        """Keep the newest by seq, so a late or replayed older event changes nothing."""

    async def device_allows(self, device_hash: str, purpose: str) -> bool: ...


Telemetries = UnitOfWork[TelemetryStore]
