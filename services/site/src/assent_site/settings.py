"""The Site's settings, from the environment (prefix ASSENT_)."""

from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assent_shared.settings import Environment, UnsafeSettings

_DEV_SECRET = "development-only-site-session-secret"


class SiteSettings(BaseSettings):
    """The Site keeps no database and no Kafka client: it talks to the services over HTTP."""

    model_config = SettingsConfigDict(env_prefix="ASSENT_", extra="ignore", populate_by_name=True)
    set_in_production: ClassVar[tuple[str, ...]] = ("session_secret",)

    service_name: str = "site"
    environment: Environment = Field(default="production", validation_alias=AliasChoices("ASSENT_ENV"))
    log_level: str = "INFO"
    otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT", "ASSENT_OTLP_ENDPOINT"))
    site_url: str = Field(default="http://127.0.0.1:8100",
                          description="The Site's public origin: forms must come from it; https makes cookies Secure.")
    identity_url: str = "http://127.0.0.1:8101"
    consent_url: str = "http://127.0.0.1:8102"
    mailer_url: str = "http://127.0.0.1:8103"
    policy_url: str = "http://127.0.0.1:8104"
    telemetry_url: str = "http://127.0.0.1:8105"
    support_url: str = "http://127.0.0.1:8106"
    telemetry_public_url: str | None = Field(
        default=None, description="Where browsers load the telemetry script from; default telemetry_url.")
    telemetry_site_id: str = Field(default="site", description="The Site's id at telemetry (its SITES setting).")
    policy_id: str = "privacy"
    admin_token: str | None = Field(default=None, validation_alias=AliasChoices("ASSENT_ADMIN_TOKEN"),
                                    description="The services' admin token, used server-side only.")
    admin_password_hash: str | None = Field(
        default=None, validation_alias=AliasChoices("ASSENT_SITE_ADMIN_PASSWORD_HASH"),
        description="argon2id hash of the console's password; without it the console refuses every sign-in.")
    session_secret: str = Field(default=_DEV_SECRET, min_length=32,
                                description="Key of the sealed session cookies and of CSRF tokens.")
    session_hours: float = Field(default=12, gt=0, le=24 * 30, description="Longest life of a sign-in at the Site.")
    admin_session_minutes: float = Field(default=60, gt=0, le=24 * 60)
    upstream_timeout_seconds: float = Field(default=10, gt=0, le=120)
    trust_forwarded_for: bool = Field(
        default=False, description="The Site sits behind a proxy: take the visitor's address from X-Forwarded-For.")
    trusted_proxies: list[str] = Field(
        default=[], description="CIDRs of the proxies whose X-Forwarded-For counts (JSON list); required in "
                                "production when trust_forwarded_for is set.")

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> "SiteSettings":
        if self.environment == "production":
            for name in self.set_in_production:
                if getattr(self, name) == type(self).model_fields[name].default:
                    raise UnsafeSettings(f"ASSENT_{name.upper()} must be set in production")
            if self.trust_forwarded_for and not self.trusted_proxies:
                raise UnsafeSettings("ASSENT_TRUSTED_PROXIES must list the proxies' networks in production when "
                                     "ASSENT_TRUST_FORWARDED_FOR is set")
            if not self.secure_cookies:
                raise UnsafeSettings("ASSENT_SITE_URL must be https in production")
        return self

    @property
    def origin(self) -> str:
        parts = urlsplit(self.site_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.site_url).scheme == "https"

    @property
    def telemetry_browser_url(self) -> str:
        return (self.telemetry_public_url or self.telemetry_url).rstrip("/")
