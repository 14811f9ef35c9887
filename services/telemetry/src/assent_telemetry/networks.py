"""The visitor's network (ISP or AS name) from an offline MaxMind DB file; the address never leaves memory.

`python -m assent_telemetry.networks build IN.tsv OUT.mmdb` turns "cidr<TAB>asn<TAB>organization" lines
(e.g. converted from a free IP-to-ASN list) into a GeoLite2-ASN-shaped file the service reads.
"""

import sys
from collections.abc import Iterable

import maxminddb
from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet


class NetworkLookup:
    def __init__(self, path: str | None) -> None:
        # MODE_AUTO maps the file into memory: lookups are cheap and need no I/O per hit.
        self._reader = maxminddb.open_database(path) if path else None

    def network(self, ip: str | None) -> str | None:
        if self._reader is None or not ip:
            return None
        try:
            record = self._reader.get(ip)
        except ValueError:  # not an address, or IPv6 in an IPv4-only file
            return None
        return network_name(record) if isinstance(record, dict) else None


def network_name(record: dict) -> str | None:
    """The ISP of a GeoIP2-ISP record, else the AS organization of a GeoLite2-ASN one, else the AS number."""
    name = record.get("isp") or record.get("autonomous_system_organization")
    if name:
        return str(name)[:200]
    number = record.get("autonomous_system_number")
    return f"AS{number}" if number else None


def build_database(networks: Iterable[tuple[str, int, str]], path: str) -> None:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN",
                        description="Assent IP-to-ASN database")
    for cidr, asn, organization in networks:
        writer.insert_network(IPSet([cidr]), {
            "autonomous_system_number": MmdbU32(asn),
            "autonomous_system_organization": organization,
        })
    writer.to_db_file(path)


def _read_tsv(path: str) -> list[tuple[str, int, str]]:
    rows = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and not line.startswith("#"):
                cidr, asn, organization = line.rstrip("\n").split("\t", 2)
                rows.append((cidr, int(asn), organization))
    return rows


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "build":
        sys.exit("usage: python -m assent_telemetry.networks build IN.tsv OUT.mmdb")
    build_database(_read_tsv(sys.argv[2]), sys.argv[3])
