"""What partners may see, free of I/O: counted units, one dimension each, and suppression that covers complements.

The proof that no figure or combination of figures reveals a group under k is in the README.
"""

import hashlib
import hmac
import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from assent_shared.events import PageViewed

# The dimensions a partner can ask for; each counted unit falls into exactly one of them per day.
DIMENSIONS = ("page", "browser", "os", "device_type", "isp", "referrer")
_V4_PREFIX, _V6_PREFIX = 24, 48


def network_prefix(ip: str | None) -> str:
    """The visitor's network: an IPv4 /24 or an IPv6 /48 (`unknown` without an address). Every
    address in it is one counted unit, so fake visitors need a network each, not an address each."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    bits = _V4_PREFIX if address.version == 4 else _V6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def network_unit(salt: bytes, site_id: str, prefix: str) -> str:
    """The network-derived daily hash of a hit: unlinkable across days once the day's salt is gone."""
    return "n" + hmac.new(salt, f"{site_id}\x00network\x00{prefix}".encode(), hashlib.sha256).hexdigest()[:32]


def dimension_of(unit: str) -> str:
    """The one dimension a unit is counted in. The unit is a keyed hash, so nobody outside can
    steer their fake visitors into the dimension they want to probe."""
    return DIMENSIONS[int(unit[1:9], 16) % len(DIMENSIONS)]


def value_in(event: PageViewed, dimension: str) -> str:
    return {
        "page": event.path, "browser": event.browser, "os": event.os, "device_type": event.device_type,
        "isp": event.isp or "unknown", "referrer": event.referrer or "(direct)",
    }[dimension]


@dataclass(frozen=True)
class UnitHits:
    """A unit's hits on one value of its dimension on one day, and when the first of them came."""

    site_id: str
    day: date
    unit: str
    dimension: str
    value: str
    hits: int
    first_at: datetime


def unit_hits(events: Iterable[PageViewed]) -> list[UnitHits]:
    """Per (site, day, unit, value of the unit's dimension): hits and first time. Bots and hits
    without a unit (from before units existed) count for no partner."""
    found: dict[tuple[str, date, str, str], UnitHits] = {}
    for event in events:
        if event.device_type == "bot" or event.network_unit is None:
            continue
        dimension = dimension_of(event.network_unit)
        value = value_in(event, dimension)
        key = (event.site_id, event.occurred_at.date(), event.network_unit, value)
        held = found.get(key)
        found[key] = UnitHits(event.site_id, key[1], event.network_unit, dimension, value,
                              (held.hits if held else 0) + 1,
                              min(held.first_at, event.occurred_at) if held else event.occurred_at)
    return list(found.values())


@dataclass(frozen=True)
class Cell:
    dimension: str
    value: str
    visitors: int
    hits: int


def cells(rows: Iterable[UnitHits], k: int) -> list[Cell]:
    """The cells of one site-day a partner may see.

    Each unit counts in one cell only: its dimension, and the value of its first hit there (ties:
    the smaller value). Within a dimension the cells then partition its units; cells under k are
    suppressed, and while what is suppressed adds up to more than 0 and less than k, the smallest
    cell shown is suppressed too, so no total known elsewhere can be differenced down to it.
    """
    first: dict[str, UnitHits] = {}
    for row in rows:
        held = first.get(row.unit)
        if held is None or (row.first_at, row.value) < (held.first_at, held.value):
            first[row.unit] = row
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in first.values():
        cell = tally[(row.dimension, row.value)]
        cell[0] += 1
        cell[1] += row.hits
    shown: list[Cell] = []
    for dimension in DIMENSIONS:
        candidates = sorted((Cell(d, v, n, h) for (d, v), (n, h) in tally.items() if d == dimension),
                            key=lambda c: (c.visitors, c.value))
        suppressed = [c for c in candidates if c.visitors < k]
        kept = [c for c in candidates if c.visitors >= k]
        while kept and 0 < sum(c.visitors for c in suppressed) < k:
            suppressed.append(kept.pop(0))
        shown.extend(kept)
    return shown
