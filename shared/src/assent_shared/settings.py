"""Settings common to every service, read from the environment."""

from typing import ClassVar, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assent_shared.clients import parse_networks

Environment = Literal["development", "test", "production"]
_MIN_ADMIN_TOKEN = 32


class UnsafeSettings(ValueError):
    """A setting that is tolerable on a laptop was left at its default in production."""


class ServiceSettings(BaseSettings):
    """Each service subclasses this with its own fields and a default `service_name`."""

    model_config = SettingsConfigDict(env_prefix="ASSENT_", extra="ignore", populate_by_name=True)

    # Fields whose defaults only suit a laptop: production must set each of them.
    set_in_production: ClassVar[tuple[str, ...]] = ()

    service_name: str
    environment: Environment = Field(default="production", validation_alias=AliasChoices("ASSENT_ENV"))
    database_url: str = Field(
        default="postgresql://assent@127.0.0.1:5432/assent",
        validation_alias=AliasChoices("DATABASE_URL", "ASSENT_DATABASE_URL"),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    topic_prefix: str = Field(default="", description="Prefix for every topic; tests isolate runs with it.")
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    consumer_group: str | None = Field(default=None, description="Defaults to assent-<service>.")
    admin_token: str | None = Field(default=None, validation_alias=AliasChoices("ASSENT_ADMIN_TOKEN"))
    jwks_url: str = "http://127.0.0.1:8101/.well-known/jwks.json"
    jwt_issuer: str = "assent-identity"
    jwks_cache_seconds: float = Field(
        default=300.0, gt=0, le=300,
        description="Age at which identity's key set is fetched again: a withdrawn key stops working within it.",
    )
    relay_enabled: bool = Field(default=True, description="Run the outbox relay in this process.")
    relay_poll_seconds: float = 1.0
    outbox_keep_published_seconds: float = Field(default=24 * 3600, ge=0)
    db_pool_max: int = 10
    log_level: str = "INFO"
    lag_poll_seconds: float = Field(default=15.0, gt=0, description="How often consumer lag is measured.")
    otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "ASSENT_OTLP_ENDPOINT"),
        description="Where spans go (OTLP over HTTP); none are exported without it.",
    )
    consumer_batch: int = Field(default=100, ge=1, le=10_000, description="Records per consumer batch and commit.")
    key_owner_url: str = Field(default="http://127.0.0.1:8101",
                               description="Identity, which holds the data keys of personal fields in events.")
    key_owner_token: str | None = Field(
        default=None, description="This service's token at the key owner; a development token when unset (not in production).",
    )
    key_cache_seconds: float = Field(
        default=60.0, gt=0, le=300,
        description="How long a fetched data key stays in memory: after an erasure no service opens its fields past this.",
    )
    key_cache_entries: int = Field(default=10_000, ge=1, description="Most data keys kept in memory.")
    task_restart_min_seconds: float = Field(default=1.0, gt=0, description="First pause before a crashed background task restarts.")
    task_restart_max_seconds: float = Field(default=60.0, gt=0, description="Longest pause; it doubles per crash up to this.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body; more gets 413.")
    trust_forwarded_for: bool = Field(
        default=False, description="This service sits behind a proxy: read X-Forwarded-For/-Proto from it.")
    trusted_proxies: list[str] = Field(
        default=[], description="CIDRs of the proxies whose forwarded headers count (JSON list); required in "
                                "production when trust_forwarded_for is set.")
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "ServiceSettings":
        if self.environment == "production":
            if not self.admin_token or len(self.admin_token) < _MIN_ADMIN_TOKEN:
                raise UnsafeSettings(
                    f"ASSENT_ADMIN_TOKEN must be set to at least {_MIN_ADMIN_TOKEN} characters in production"
                )
            if "@127.0.0.1:5432/assent" in self.database_url and "://assent@" in self.database_url:
                raise UnsafeSettings("DATABASE_URL must be set in production")
            if self.trust_forwarded_for and not self.trusted_proxies:
                raise UnsafeSettings("ASSENT_TRUSTED_PROXIES must list the proxies' networks in production when "
                                     "ASSENT_TRUST_FORWARDED_FOR is set: otherwise any client could choose its address")
            for name in self.set_in_production:
                if getattr(self, name) == type(self).model_fields[name].default:
                    raise UnsafeSettings(f"ASSENT_{name.upper()} must be set in production")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        parse_networks(value)  # a ValueError names the entry that is not a network
        return value

    @property
    def group_id(self) -> str:
        return self.consumer_group or f"assent-{self.service_name}"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
