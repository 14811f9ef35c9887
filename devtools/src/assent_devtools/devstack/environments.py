"""The processes' environments, built in one place for every local stack: `make run`, the e2e system,
bench and chaos. Each says only where its servers are and what it tunes."""

import json
from collections.abc import Mapping

from assent_devtools.devstack.services import SERVICES, SITE

# A stopped consumer's partitions move to the others within seconds, not the default 45 s.
REJOIN = {"ASSENT_KAFKA_SESSION_TIMEOUT_MS": "6000", "ASSENT_KAFKA_HEARTBEAT_INTERVAL_MS": "500"}
# Tests and fault runs: a restarted consumer rejoins, the relay publishes and a failed delivery is
# retried within seconds; password hashing is cheap (the tests register many users).
QUICK = {
    **REJOIN,
    "ASSENT_RELAY_POLL_SECONDS": "0.2",
    "ASSENT_ARGON2_MEMORY_KIB": "8192",
    "ASSENT_RETRY_BASE_SECONDS": "0.1",
    "ASSENT_RETRY_MAX_SECONDS": "0.5",
    "ASSENT_LAG_POLL_SECONDS": "2",
}


def telemetry_sites(site_url: str) -> str:
    """Telemetry's site registry: the Site, under both names a browser may use for loopback."""
    return json.dumps({"site": [site_url, site_url.replace("127.0.0.1", "localhost")]})


def build(*, environment: str, kafka: str, databases: Mapping[str, str], urls: Mapping[str, str], smtp_port: int,
          admin_token: str, topic_prefix: str = "", settings: Mapping[str, str] | None = None,
          site: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Every process's environment by name: each service's (`databases` holds its database URL) and the
    Site's when `urls` has it. Every process learns every other's URL from `urls`; `settings` go to all,
    `site` only to the Site."""
    identity = urls["identity"]
    common = {
        "ASSENT_ENV": environment,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "ASSENT_TOPIC_PREFIX": topic_prefix,
        "ASSENT_ADMIN_TOKEN": admin_token,
        "ASSENT_JWKS_URL": f"{identity}/.well-known/jwks.json",
        "ASSENT_KEY_OWNER_URL": identity,
        "ASSENT_SMTP_HOST": "127.0.0.1",
        "ASSENT_SMTP_PORT": str(smtp_port),
        **({"ASSENT_SITES": telemetry_sites(urls[SITE.name])} if SITE.name in urls else {}),
        **{f"ASSENT_{name.upper()}_URL": url for name, url in urls.items()},
        **(settings or {}),
    }
    envs = {spec.name: {**common, "DATABASE_URL": databases[spec.name]} for spec in SERVICES}
    if SITE.name in urls:
        envs[SITE.name] = {**common, **(site or {})}
    return envs
