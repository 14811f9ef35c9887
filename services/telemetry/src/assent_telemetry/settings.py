from pydantic import Field, model_validator

from assent_shared.settings import ServiceSettings, UnsafeSettings

_MIN_PARTNER_TOKEN = 32


class TelemetrySettings(ServiceSettings):
    service_name: str = "telemetry"
    relay_enabled: bool = Field(default=False, description="Telemetry has no outbox: hits go straight to Kafka.")
    sites: dict[str, list[str]] = Field(
        default={"demo": ["http://localhost:8000", "http://127.0.0.1:8000"]},
        description="Site id -> origins allowed to send hits for it (CORS). JSON in ASSENT_SITES.",
    )
    partners: dict[str, str] = Field(
        default={}, description="Partner id -> token for /v1/reports/aggregate. JSON in ASSENT_PARTNERS."
    )
    partner_sites: dict[str, list[str]] = Field(
        default={}, description="Partner id -> the site ids it may see (JSON in ASSENT_PARTNER_SITES); none by default.",
    )
    network_hits_per_minute: int = Field(default=600, ge=1, description="Hits a network (/24, /48) may send per minute.")
    aggregate_keep_days: int = Field(default=760, ge=1, description="How long rollups and partner cells are kept (25 months).")
    k_anonymity: int = Field(default=10, ge=2, description="Groups with fewer distinct visitors are suppressed.")
    asn_database: str | None = Field(default=None, description="Path of an offline IP-to-ASN/ISP MMDB file.")
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_batch: int = Field(default=100, ge=1)
    late_hit_seconds: int = Field(
        default=3600, ge=0, description="How old a hit's own `ts` may be; a day's salt lives this long past midnight."
    )
    future_skew_seconds: int = Field(default=300, ge=0, description="How far ahead of our clock a `ts` may be.")
    report_settle_seconds: int = Field(
        default=3600, ge=0, description="Extra wait after a day can take no more hits before partners see it."
    )
    visitor_cookie: str = "assent_vid"
    visitor_cookie_days: int = Field(default=390, ge=1, description="13 months, the usual cap for analytics cookies.")
    aggregator_max_records: int = Field(default=500, ge=1)
    maintenance_seconds: float = Field(default=300.0, gt=0)
    inbox_keep_days: int = Field(
        default=8, ge=1, description="Inbox ids of hits outlive the topic's 7-day retention, then are pruned."
    )

    @model_validator(mode="after")
    def _refuse_weak_partner_tokens(self) -> "TelemetrySettings":
        if self.environment == "production":
            weak = [p for p, token in self.partners.items() if len(token) < _MIN_PARTNER_TOKEN]
            if weak:
                raise UnsafeSettings(f"partner tokens must have at least {_MIN_PARTNER_TOKEN} characters: {weak}")
        return self
