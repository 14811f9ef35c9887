from pydantic import Field

from assent_shared.settings import ServiceSettings


class MailerSettings(ServiceSettings):
    set_in_production = ("signing_secret",)
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
    dispatch_poll_seconds: float = 0.2
    dispatch_batch: int = 20
    webhook_timeout_seconds: float = 5.0
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 600.0
