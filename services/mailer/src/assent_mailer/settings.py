from pydantic import Field, model_validator

from assent_shared.settings import ServiceSettings


class MailerSettings(ServiceSettings):
    set_in_production = ("signing_secret", "suppression_keys", "mail_token_secret", "site_url", "bounce_secret")
    service_name: str = "mailer"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_connections: int = Field(default=8, ge=1, le=100, description="Kept-open connections to the relay.")
    mail_from: str = "Assent demo site <hello@assent.example>"
    public_url: str = Field(default="https://127.0.0.1:8103",
                            description="Public HTTPS base URL of the mailer, for one-click unsubscribe links.")
    signing_secret: str = Field(default="development-only-unsubscribe-secret", min_length=16,
                                description="Key of the HMAC that signs unsubscribe tokens.")
    suppression_keys: dict[str, str] = Field(
        default={"dev-1": "development-only-suppression-key"},
        description="Key id -> secret of the HMAC of suppressed addresses (JSON); apart from the unsubscribe key. "
                    "Keep an old key listed while hashes under it remain (the mailer refuses to start otherwise).",
    )
    suppression_key_id: str = Field(default="dev-1", description="The key new suppression hashes are made with.")
    suppression_keep_seconds: float = Field(default=2 * 365 * 24 * 3600, gt=0,
                                            description="A suppression not seen again for this long is deleted.")
    mail_token_secret: str = Field(
        default="development-only-mail-token-secret", min_length=16,
        description="Shared with identity only: opens the verification and reset tokens it seals.")
    bounce_secret: str = Field(
        default="development-only-bounce-secret", min_length=16,
        description="Shared with the relay only: the HMAC key of the `Assent-Signature` on its bounce and complaint "
                    "reports (POST /v1/bounces).")
    site_url: str = Field(default="http://127.0.0.1:8100",
                          description="The Site's public base URL: mail links go to its pages (ASSENT_SITE_URL).")
    dispatch_poll_seconds: float = 0.2
    dispatch_batch: int = Field(
        default=100, ge=1, description="Deliveries claimed, sent side by side and recorded together per round.")
    stop_grace_seconds: float = Field(
        default=10.0, gt=0, description="At a stop, how long the batch being sent may take to finish and be recorded.")
    webhook_timeout_seconds: float = 5.0
    http_webhooks: bool | None = Field(
        default=None, description="Accept processor webhook URLs over plain http: never in production (personal "
                                  "data travels encrypted); by default yes elsewhere, for local processors.")
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 600.0
    max_delivery_attempts: int = Field(
        default=12, ge=1, le=1000, description="Attempts a delivery gets; the last failure records it as failed "
                                               "(DeliveryFailed) instead of retrying for ever.")

    @model_validator(mode="after")
    def _current_key_is_configured(self) -> "MailerSettings":
        if self.suppression_key_id not in self.suppression_keys:
            raise ValueError("ASSENT_SUPPRESSION_KEY_ID must name one of ASSENT_SUPPRESSION_KEYS")
        if any(len(secret) < 16 for secret in self.suppression_keys.values()):
            raise ValueError("each of ASSENT_SUPPRESSION_KEYS needs at least 16 characters")
        if self.http_webhooks is None:
            self.http_webhooks = self.environment != "production"
        elif self.http_webhooks and self.environment == "production":
            raise ValueError("ASSENT_HTTP_WEBHOOKS cannot be set in production: processor webhooks use https")
        if self.bounce_secret in (self.signing_secret, self.mail_token_secret, *self.suppression_keys.values()):
            raise ValueError("ASSENT_BOUNCE_SECRET must differ from every other secret: the relay holds it")
        if self.signing_secret in self.suppression_keys.values():
            raise ValueError("the suppression keys must differ from the unsubscribe key (ASSENT_SIGNING_SECRET)")
        return self
