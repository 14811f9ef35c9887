from pydantic import Field

from assent_shared.settings import ServiceSettings

DEFAULT_PURPOSES = {
    "newsletter": "Our newsletter and product news by email.",
    "surveys": "Invitations to surveys run by a survey provider.",
    "analytics_cookies": "A first-party analytics cookie that recognises a returning browser.",
    "order_updates": "Updates about orders by email or a delivery partner.",
}


class ConsentSettings(ServiceSettings):
    set_in_production = ("signing_secret",)
    service_name: str = "consent"
    purposes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PURPOSES),
                                     description="Purpose id -> description (JSON in ASSENT_PURPOSES).")
    policy_id: str = "privacy"
    signing_secret: str = Field(default="development-only-receipt-secret", min_length=16,
                                description="Seed of the key that signs consent receipts.")
