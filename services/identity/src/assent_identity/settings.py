import os

from pydantic import Field

from assent_shared.personal import development_key_token
from assent_shared.settings import ServiceSettings

# Services that may read data keys; each has its own token (ASSENT_KEY_CLIENTS, a JSON object).
_DEVELOPMENT_KEY_CLIENTS = {name: development_key_token(name)
                            for name in ("consent", "mailer", "policy", "telemetry", "support")}


class IdentitySettings(ServiceSettings):
    set_in_production = ("signing_key_secret", "data_key_secret", "key_clients", "throttle_key_secret",
                         "mail_token_secret")
    service_name: str = "identity"
    signing_key_secret: str = Field(default="development-only-signing-key-secret", min_length=16,
                                    description="Seals the private signing keys stored in the database.")
    data_key_secret: str = Field(default="development-only-data-key-secret", min_length=16,
                                 description="Wraps the per-subject data keys of personal fields; apart from other secrets.")
    key_clients: dict[str, str] = Field(default=_DEVELOPMENT_KEY_CLIENTS,
                                        description="Service name -> token of each service that may fetch data keys.")
    key_audit_keep_seconds: float = Field(default=400 * 24 * 3600, gt=0,
                                          description="How long key-access audit rows are kept.")
    access_token_seconds: int = Field(default=900, ge=30)
    refresh_token_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    key_rotation_seconds: int = Field(default=7 * 24 * 3600, ge=60, description="Age at which a new signing key starts.")
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    argon2_in_flight: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1,
        description="Hashes computed at once per process; each holds argon2_memory_kib, more than the cores only queue.")
    policy_id: str = "privacy"
    consent_url: str = "http://127.0.0.1:8102"
    mailer_url: str = "http://127.0.0.1:8103"
    policy_url: str = "http://127.0.0.1:8104"
    support_url: str = "http://127.0.0.1:8106"
    throttle_key_secret: str = Field(
        default="development-only-throttle-key-secret", min_length=16,
        description="Keys the HMAC of login-throttle keys (email, client network); apart from other secrets.")
    throttle_prune_seconds: float = Field(default=300.0, gt=0, description="How often spent throttle rows go.")
    mail_token_secret: str = Field(
        default="development-only-mail-token-secret", min_length=16,
        description="Shared with the mailer only: seals verification and reset tokens on the topic.")
    verification_token_seconds: int = Field(default=3 * 24 * 3600, ge=60, description="Life of a verification link.")
    reset_token_seconds: int = Field(default=3600, ge=60, description="Life of a password-reset link.")
    mails_per_account_hour: int = Field(default=3, ge=1,
                                        description="Verification or reset mails an account gets per hour, at most.")
    resets_per_client_hour: int = Field(default=10, ge=1, description="Reset requests one client may make per hour.")
