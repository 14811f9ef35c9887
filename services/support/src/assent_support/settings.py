from pydantic import Field

from assent_shared.settings import ServiceSettings


class SupportSettings(ServiceSettings):
    set_in_production = ("signing_secret",)
    service_name: str = "support"
    signing_secret: str = Field(default="development-only-support-secret", min_length=16,
                                description="Key of the keyed hash that names a client in rate limits.")
    site_url: str = Field(default="http://127.0.0.1:8100",
                          description="The Site; reply links point to its page {site_url}/contact/reply.")
    max_message_chars: int = Field(default=5000, ge=100, le=100_000, description="Longest message a person may send.")
    max_reply_chars: int = Field(default=20_000, ge=100, le=200_000, description="Longest reply an admin may send.")
    rate_limit: int = Field(default=5, ge=1, description="Inquiries and answers one client may send per window.")
    rate_window_seconds: int = Field(default=3600, ge=1, description="The rate limit's window.")
    reply_link_days: float = Field(default=30, gt=0, le=365, description="How long a reply's answer link works.")
    trust_forwarded_for: bool = Field(default=False, description="Take the client address from X-Forwarded-For.")
