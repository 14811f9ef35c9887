"""Who is calling: the client's address and scheme, taken from forwarded headers only when the
peer is a proxy we trust, so nobody else can choose the address that throttling keys on.

X-Forwarded-For is read from the right: each trusted proxy appends the peer it saw, so the first
address from the right that is not one of our proxies is the client; what lies left of it was
sent by the client and may be forged.
"""

import ipaddress
from collections.abc import Sequence

from fastapi import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


class Forwarding:
    def __init__(self, trusted_proxies: Sequence[str], trust_any_peer: bool = False) -> None:
        """`trust_any_peer` only where no proxy list is set outside production (settings refuse it there)."""
        self._trusted = parse_networks(trusted_proxies)
        self._trust_any = trust_any_peer and not self._trusted

    def _is_proxy(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def _peer_trusted(self, request: Request) -> bool:
        peer = request.client.host if request.client else None
        return peer is not None and (self._trust_any or self._is_proxy(peer))

    def client_address(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        forwarded = request.headers.get("x-forwarded-for")
        if not forwarded or not self._peer_trusted(request):
            return peer
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if self._trust_any or not self._is_proxy(hop):
                return hop
        return hops[0] if hops else peer

    def scheme(self, request: Request) -> str:
        """`https` when the request reached us over TLS, directly or through a trusted proxy."""
        proto = request.headers.get("x-forwarded-proto")
        if proto and self._peer_trusted(request):
            return proto.rsplit(",", 1)[-1].strip().lower()
        return request.url.scheme


def throttle_network(address: str | None) -> str:
    """What one client controls: an IPv4 address, or the /64 an IPv6 host picks addresses from."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
