from pydantic import Field

from assent_shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    set_in_production = ("signing_key_secret",)
    service_name: str = "identity"
    signing_key_secret: str = Field(default="development-only-signing-key-secret", min_length=16,
                                    description="Seals the private signing keys stored in the database.")
    access_token_seconds: int = Field(default=900, ge=30)
    refresh_token_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    key_rotation_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="Age at which a new signing key starts.")
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    policy_id: str = "privacy"
    erasure_confirmed_by: list[str] = Field(
        default_factory=lambda: ["consent", "mailer", "policy"],
        description="Services that hold personal data and confirm an erasure.",
    )
    consent_url: str = "http://127.0.0.1:8102"
    mailer_url: str = "http://127.0.0.1:8103"
    policy_url: str = "http://127.0.0.1:8104"
    trust_forwarded_for: bool = Field(default=False, description="Take the client address from X-Forwarded-For.")
