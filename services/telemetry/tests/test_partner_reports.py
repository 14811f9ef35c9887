"""Partner reports against a differencing and a fake-visitor attack (the guarantee is in the README).

The attacker here is stronger than a partner: it knows which real visitors stand behind every
figure it fetched, and it knows every total. It looks for a set of visitors it can pin down by
differencing figures (a figure whose visitors contain another's, minus it; a dimension's total
minus the figures shown) whose size is over 0 and under k. The same attack on a naive report of
the same data (every visitor in every dimension) finds one, so the attack is real.
"""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from assent_shared.events import PageViewed
from assent_devtools.testing.helpers import eventually
from assent_telemetry import domain, partner
from telemetry_testkit import CHROME_WINDOWS, IPHONE, PARTNER_TOKEN

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
        "Safari/537.36 Edg/124.0.0.0")
K = 3


def revealed_small_groups(figures: dict[tuple, frozenset], totals: dict[tuple, frozenset], k: int) -> list:
    """Sets of visitors the attacker pins down with 0 < size < k.

    `figures` maps each published figure to the visitors behind it; `totals` are sets whose size the
    attacker knows anyway (per site-day and dimension), with the figures that fall inside each.
    """
    found = []
    for name, whole in list(figures.items()) + list(totals.items()):
        inside = [s for other, s in figures.items() if other != name and s < whole]
        if inside:
            left = whole - frozenset().union(*inside)
            if 0 < len(left) < k:
                found.append((name, sorted(left)))
        for other, part in figures.items():
            if other != name and part < whole and 0 < len(whole - part) < k:
                found.append((name, other))
    return found


def _visits(rng: random.Random, scale: int) -> list[tuple[str, str, str]]:
    """(address, agent, path) per hit, one /24 per visitor: groups just under k or a little over, Chrome => desktop."""
    profiles = [(CHROME_WINDOWS, "/a", 4 * K), (FIREFOX, "/a", K - 1), (EDGE, "/rare", 1), (IPHONE, "/b", 3 * K),
                (IPHONE, "/c", K - 1), (FIREFOX, "/b", 2 * K - 1), (CHROME_WINDOWS, "/c", K)]
    visits, n = [], 0
    for agent, path, count in profiles:
        for _ in range(count * scale):
            n += 1
            network = f"10.{n // 250}.{n % 250}.1"
            visits += [(network, agent, path)] * rng.randint(1, 3)
    rng.shuffle(visits)
    return visits


def _truth(visits, salt: bytes, site_id: str) -> dict[str, tuple[str, str]]:
    """Each network, in the order its hits were sent -> (dimension it counts in, value of its first hit there)."""
    out = {}
    for address, agent, path in visits:
        unit = partner.network_unit(salt, site_id, partner.network_prefix(address))
        if unit in out:
            continue
        parsed = domain.classify(agent)
        event = PageViewed(site_id=site_id, path=path, browser=parsed.browser, os=parsed.os,
                           device_type=parsed.device_type, isp="unknown", visitor_hash="x", network_unit=unit,
                           occurred_at=datetime.now(UTC))
        dimension = partner.dimension_of(unit)
        out[unit] = (dimension, partner.value_in(event, dimension))
    return out


def _naive_figures(visits, k: int) -> dict[tuple, frozenset]:
    """What a report that counts every visitor in every dimension would publish (groups of k and over)."""
    groups: dict[tuple, set] = defaultdict(set)
    for network, agent, path in visits:
        parsed = domain.classify(agent)
        for dimension, value in (("page", path), ("browser", parsed.browser), ("device_type", parsed.device_type)):
            groups[(dimension, value)].add(network)
    return {name: frozenset(s) for name, s in groups.items() if len(s) >= k}


async def test_differencing_and_fake_visitors_reveal_no_group_under_k(telemetry_app):
    rng = random.Random(15)
    async with telemetry_app(network_hits_per_minute=1000) as telemetry:
        visits = _visits(rng, scale=6)  # about a sixth of the networks count in each dimension
        for network, agent, path in visits:
            response = await telemetry.hit(network, agent, {"site_id": "demo", "url": f"https://demo.example{path}"})
            assert response.status_code == 202, response.text
        # Fake visitors: k-1 "people" (addresses, agents, cookies) from one network on /probe of both sites;
        # a real visitor comes to /probe on shop only. The partner must not be able to tell the sites apart.
        # (/probe, not a path of the generated visitors: which of them count under "page" depends on the
        # day's salt, so a path they visit may rightly reach k.)
        fakes = [(f"192.0.2.{n + 1}", agent, "/probe") for n, agent in enumerate((CHROME_WINDOWS, FIREFOX)[:K - 1])]
        for site in ("demo", "shop"):
            for address, agent, path in fakes:
                fake = await telemetry.hit(address, agent, {"site_id": site, "consent": True,
                                                            "url": f"https://{site}.example{path}"})
                assert fake.status_code == 202
        await telemetry.hit("198.51.100.40", EDGE, {"site_id": "shop", "url": "https://shop.example/probe"})
        await eventually(lambda: _counted(telemetry, len(visits) + 2 * (K - 1) + 1))
        [salt] = [r["salt"] for r in await telemetry.fetch("SELECT salt FROM daily_salts WHERE day = $1",
                                                           telemetry.clock().date())]
        day = telemetry.clock().date().isoformat()
        telemetry.clock.offset = timedelta(days=2, hours=3)

        reports = {}
        for site in ("demo", "shop"):
            for dimension in partner.DIMENSIONS:
                response = await _report(telemetry, site, dimension, day)
                assert response.status_code == 200, response.text
                [published] = response.json()["days"]
                reports[(site, dimension)] = published["groups"]
        assert (await _report(telemetry, "blog", "page", day)).status_code == 403  # not this partner's site

        # Every figure is >= k, and fetching again gives the same answer.
        assert all(g["visitors"] >= K for groups in reports.values() for g in groups)
        again = await _report(telemetry, "demo", "browser", day)
        assert again.json()["days"][0]["groups"] == reports[("demo", "browser")]

        truth = _truth(visits + fakes, salt, "demo")
        figures, totals = {}, defaultdict(set)
        for network, (dimension, value) in truth.items():
            totals[("demo", dimension, "total")].add(network)
        for dimension in partner.DIMENSIONS:
            for g in reports[("demo", dimension)]:
                behind = frozenset(n for n, cell in truth.items() if cell == (dimension, g["value"]))
                assert len(behind) == g["visitors"], (dimension, g)  # the figures are true counts
                figures[("demo", dimension, g["value"])] = behind
        assert figures, "the generated data must give the attacker figures to work with"
        assert revealed_small_groups(figures, {n: frozenset(s) for n, s in totals.items()}, K) == []

        # The same attack on a naive report of visits shaped the same pins down a group under k
        # (desktop minus Chrome minus Firefox: the one Edge visitor).
        assert revealed_small_groups(_naive_figures(_visits(rng, scale=1), K), {}, K)

        # Fake visitors: one network counts once, so /probe never reaches k, with or without the real visitor.
        for site in ("demo", "shop"):
            assert not [g for dimension in partner.DIMENSIONS for g in reports[(site, dimension)]
                        if g["value"] == "/probe"]


async def test_a_network_that_floods_is_refused_and_a_partner_sees_only_its_sites(telemetry_app):
    async with telemetry_app(network_hits_per_minute=5) as telemetry:
        answers = [await telemetry.hit(f"192.0.2.{n}", CHROME_WINDOWS, {"site_id": "demo",
                                                                         "url": "https://demo.example/"})
                   for n in range(1, 8)]
        assert [a.status_code for a in answers] == [202] * 5 + [429] * 2
        assert int(answers[-1].headers["retry-after"]) >= 1
        # Another network is not slowed by it.
        assert (await telemetry.hit("198.51.100.9", CHROME_WINDOWS, {"site_id": "demo",
                                                                      "url": "https://demo.example/"})).status_code == 202
        day = telemetry.clock().date().isoformat()
        telemetry.clock.offset = timedelta(days=2, hours=3)
        assert (await _report(telemetry, "blog", "page", day)).status_code == 403
        assert (await _report(telemetry, "demo", "page", day)).status_code == 200


def test_suppression_covers_the_complement_within_a_dimension():
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    units = {}
    for n, (value, count) in enumerate([("a", 5), ("b", 3), ("c", 1)]):
        for i in range(count):
            unit = next(u for u in (f"n{n:02d}{i:02d}{j:04x}" + "0" * 22 for j in range(10_000))
                        if partner.dimension_of(u) == "browser")
            units[unit] = value
    rows = [partner.UnitHits("demo", at.date(), u, "browser", v, 2, at) for u, v in units.items()]
    shown = partner.cells(rows, 3)
    # "c" (1) is under k, and a total known elsewhere minus a and b would give it: b goes too.
    assert [(c.value, c.visitors, c.hits) for c in shown] == [("a", 5, 10)]
    assert partner.cells(rows, 6) == []


def test_a_unit_counts_once_in_the_value_of_its_first_hit():
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    unit = next(u for u in (f"n{j:08x}" + "0" * 24 for j in range(10_000)) if partner.dimension_of(u) == "page")
    rows = [partner.UnitHits("demo", at.date(), unit, "page", "/later", 4, at + timedelta(minutes=5)),
            partner.UnitHits("demo", at.date(), unit, "page", "/first", 1, at)]
    assert partner.cells(rows, 1) == [partner.Cell("page", "/first", 1, 1)]


def test_the_network_is_a_v4_24_or_v6_48_and_its_hash_is_keyed_and_daily():
    assert partner.network_prefix("203.0.113.77") == partner.network_prefix("203.0.113.5") == "203.0.113.0/24"
    assert partner.network_prefix("2001:db8:1:2::9") == "2001:db8:1::/48"
    assert partner.network_prefix("::ffff:203.0.113.9") == "203.0.113.0/24"
    assert partner.network_prefix(None) == partner.network_prefix("garbage") == "unknown"
    monday, tuesday = b"m" * 32, b"t" * 32
    unit = partner.network_unit(monday, "demo", "203.0.113.0/24")
    assert unit != partner.network_unit(tuesday, "demo", "203.0.113.0/24")
    assert unit != partner.network_unit(monday, "shop", "203.0.113.0/24")
    assert "203.0.113" not in unit


async def _report(telemetry, site: str, dimension: str, day: str):
    return await telemetry.client.get("/v1/reports/aggregate", headers={"Authorization": f"Bearer {PARTNER_TOKEN}"},
                                      params={"site_id": site, "dimension": dimension, "from": day})


async def _counted(telemetry, expected: int) -> bool:
    total = 0
    for site in ("demo", "shop"):
        total += (await telemetry.stats(site_id=site))["pageviews"]
    return total == expected
