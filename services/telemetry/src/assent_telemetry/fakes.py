"""`ports.TelemetryStore` in memory, for the unit lane (development only: the wheel leaves this module out)."""

from collections import Counter
from dataclasses import replace
from datetime import date

from assent_shared.fakes import MemoryStore, MemoryUnitOfWork
from assent_telemetry.domain import Group, RollupKey
from assent_telemetry.partner import Cell, UnitHits
from assent_telemetry.ports import Row


class MemoryTelemetryStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.salts: dict[date, bytes] = {}
        self.rollups: Counter[RollupKey] = Counter()
        self.visitor_days: set[tuple[str, date, str, str, str]] = set()
        self.visitor_counts: dict[tuple[str, date, str, str], int] = {}
        self.unit_days: dict[tuple[str, date, str, str], UnitHits] = {}
        self.final_days: set[tuple[str, date]] = set()
        self.cells: dict[tuple[str, date], list[Cell]] = {}
        self.device_consents: dict[tuple[str, str], tuple[bool, int]] = {}

    async def salt_for(self, day: date, fresh: bytes) -> bytes:
        return self.salts.setdefault(day, fresh)

    async def delete_salts_before(self, day: date) -> None:
        self.salts = {d: s for d, s in self.salts.items() if d >= day}

    async def prune_inbox(self, topic: str, keep_days: int) -> None:
        pass  # the inbox is the shared one's, not this store's

    async def add_hits(self, hits: Counter[RollupKey]) -> None:
        self.rollups.update(hits)

    async def add_visitors(self, visitors: set[tuple[str, date, str, str, str]]) -> None:
        self.visitor_days |= visitors

    async def groups(self, site_id: str, first: date, last: date, dimension: str, limit: int) -> list[Group]:
        hits: Counter[str] = Counter()
        for key, n in self.rollups.items():
            if (key.site_id, key.dimension) == (site_id, dimension) and first <= key.day <= last:
                hits[key.value] += n
        visitors: Counter[str] = Counter()
        for site, day, dim, value, _ in self.visitor_days:
            if (site, dim) == (site_id, dimension) and first <= day <= last:
                visitors[value] += 1
        for (site, day, dim, value), n in self.visitor_counts.items():
            if (site, dim) == (site_id, dimension) and first <= day <= last:
                visitors[value] += n
        ordered = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
        return [Group(value, n, visitors[value]) for value, n in ordered][:limit]

    async def hourly(self, site_id: str, first: date, last: date, dimension: str) -> list[Row]:
        hours: Counter[tuple[date, int]] = Counter()
        for key, n in self.rollups.items():
            if (key.site_id, key.dimension) == (site_id, dimension) and first <= key.day <= last:
                hours[(key.day, key.hour)] += n
        return [{"day": day, "hour": hour, "hits": n} for (day, hour), n in sorted(hours.items())]

    async def add_unit_hits(self, rows: list[UnitHits]) -> None:
        for row in rows:
            key = (row.site_id, row.day, row.unit, row.value)
            held = self.unit_days.get(key)
            self.unit_days[key] = row if held is None else replace(
                held, hits=held.hits + row.hits, first_at=min(held.first_at, row.first_at))

    async def open_days(self, latest_final: date) -> list[tuple[str, date]]:
        days = {(s, d) for s, d, *_ in self.visitor_days if d <= latest_final}
        days |= {(s, d) for s, d, *_ in self.unit_days if d <= latest_final}
        return sorted(days, key=lambda sd: (sd[1], sd[0]))

    async def claim_final_day(self, site_id: str, day: date) -> bool:
        if (site_id, day) in self.final_days:
            return False
        self.final_days.add((site_id, day))
        return True

    async def unit_rows(self, site_id: str, day: date) -> list[UnitHits]:
        return [u for (s, d, *_), u in self.unit_days.items() if (s, d) == (site_id, day)]

    async def store_partner_cells(self, site_id: str, day: date, cells: list[Cell]) -> None:
        self.cells.setdefault((site_id, day), list(cells))

    async def drop_visitor_rows(self, site_id: str, day: date, count_first: bool) -> None:
        mine = {v for v in self.visitor_days if v[:2] == (site_id, day)}
        if count_first:
            counted = Counter(v[:4] for v in mine)
            for key, n in counted.items():
                self.visitor_counts.setdefault(key, n)
        self.visitor_days -= mine
        self.unit_days = {k: u for k, u in self.unit_days.items() if k[:2] != (site_id, day)}

    async def partner_cells(self, site_id: str, day: date, dimension: str) -> list[Cell]:
        found = [c for c in self.cells.get((site_id, day), []) if c.dimension == dimension]
        return sorted(found, key=lambda c: (-c.visitors, c.value))

    async def prune_aggregates(self, before: date) -> None:
        self.rollups = Counter({k: n for k, n in self.rollups.items() if k.day >= before})
        self.visitor_counts = {k: n for k, n in self.visitor_counts.items() if k[1] >= before}
        self.cells = {k: c for k, c in self.cells.items() if k[1] >= before}
        self.final_days = {k for k in self.final_days if k[1] >= before}

    async def apply_device_consent(self, device_hash: str, purpose: str, granted: bool, seq: int) -> None:
        held = self.device_consents.get((device_hash, purpose))
        if held is None or held[1] < seq:
            self.device_consents[(device_hash, purpose)] = (granted, seq)

    async def device_allows(self, device_hash: str, purpose: str) -> bool:
        held = self.device_consents.get((device_hash, purpose))
        return held is not None and held[0]


def memory_telemetries() -> MemoryUnitOfWork[MemoryTelemetryStore]:
    return MemoryUnitOfWork(MemoryTelemetryStore())
