from pydantic import Field

from assent_shared.settings import ServiceSettings

DEFAULT_PURPOSES = {
    "newsletter": "Our newsletter and product news by email.",
    "surveys": "Invitations to surveys run by a survey provider.",
    "analytics_cookies": "A first-party analytics cookie that recognises a returning browser.",
    "order_updates": "Updates about orders by email or a delivery partner.",
}

DEFAULT_DEVICE_PURPOSES = {
    "cookies": "Our first-party analytics cookie and device id, which recognise a returning browser.",
    "partner_cookies": "Cookies of advertising partners (third parties) on our pages.",
}


class ConsentSettings(ServiceSettings):
    set_in_production = ("signing_secret",)
    service_name: str = "consent"
    purposes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PURPOSES),
                                     description="Purpose id -> description (JSON in ASSENT_PURPOSES).")
    device_purposes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_DEVICE_PURPOSES),
        description="Purposes a visitor without an account decides per browser (JSON in ASSENT_DEVICE_PURPOSES).")
    third_party_device_purposes: list[str] = Field(
        default_factory=lambda: ["partner_cookies"],
        description="Device purposes that serve a third party: Sec-GPC: 1 refuses and withdraws them.")
    policy_id: str = "privacy"
    signing_secret: str = Field(default="development-only-receipt-secret", min_length=16,
                                description="Seed of the key that signs consent receipts.")
