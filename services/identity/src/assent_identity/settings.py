from pydantic import Field

from assent_shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: str = "identity"
    access_token_seconds: int = Field(default=900, ge=30)
    refresh_token_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    key_rotation_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="Age at which a new signing key starts.")
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    policy_id: str = "privacy"
