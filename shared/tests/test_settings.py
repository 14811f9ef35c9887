"""Settings refuse what only suits a laptop when the environment is production."""

import pytest
from pydantic import ValidationError

from assent_consent.settings import ConsentSettings
from assent_identity.settings import IdentitySettings
from assent_mailer.settings import MailerSettings
from assent_shared.settings import ServiceSettings

STRONG = "s" * 40
DB = "postgresql://svc:pw@db.internal:5432/svc"


class Plain(ServiceSettings):
    service_name: str = "plain"


def test_production_needs_a_strong_admin_token_and_a_database(monkeypatch):
    monkeypatch.delenv("ASSENT_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Plain(environment="production", database_url=DB)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        Plain(environment="production", database_url=DB, admin_token="short")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Plain(environment="production", admin_token=STRONG)
    assert Plain(environment="production", database_url=DB, admin_token=STRONG).admin_token == STRONG
    assert Plain(environment="development").admin_token is None


# Every other secret a class needs in production, so that only the signing secret is missing.
_OTHER_SECRETS = {ConsentSettings: {}, MailerSettings: {"suppression_keys": {"dev-1": "s" * 32},
                                                  "mail_token_secret": "m" * 32, "site_url": "https://site.example",
                                                  "bounce_secret": "b" * 32}}


@pytest.mark.parametrize("settings_class", [ConsentSettings, MailerSettings])
def test_production_refuses_the_development_signing_secret(settings_class):
    others = _OTHER_SECRETS[settings_class]
    with pytest.raises(ValidationError, match="SIGNING_SECRET"):
        settings_class(environment="production", database_url=DB, admin_token=STRONG, **others)
    chosen = settings_class(environment="production", database_url=DB, admin_token=STRONG,
                            signing_secret="x" * 32, **others)
    assert chosen.signing_secret == "x" * 32


def test_production_refuses_the_development_suppression_keys():
    with pytest.raises(ValidationError, match="SUPPRESSION_KEYS"):
        MailerSettings(environment="production", database_url=DB, admin_token=STRONG, signing_secret="x" * 32,
                       mail_token_secret="m" * 32, site_url="https://site.example")


@pytest.mark.parametrize("settings_class, others", [
    (IdentitySettings, {"signing_key_secret": "k" * 32, "data_key_secret": "d" * 32,
                        "key_clients": {"mailer": "t" * 32}, "throttle_key_secret": "h" * 32}),
    (MailerSettings, {"signing_secret": "x" * 32, "site_url": "https://site.example",
                      "suppression_keys": {"k1": "q" * 32}, "suppression_key_id": "k1", "bounce_secret": "b" * 32}),
])
def test_production_refuses_the_development_mail_token_secret(settings_class, others):
    with pytest.raises(ValidationError, match="MAIL_TOKEN_SECRET"):
        settings_class(environment="production", database_url=DB, admin_token=STRONG, **others)
    chosen = settings_class(environment="production", database_url=DB, admin_token=STRONG,
                            mail_token_secret="m" * 32, **others)
    assert chosen.mail_token_secret == "m" * 32


def test_production_mail_links_need_the_sites_public_url():
    with pytest.raises(ValidationError, match="SITE_URL"):
        MailerSettings(environment="production", database_url=DB, admin_token=STRONG, signing_secret="x" * 32,
                       mail_token_secret="m" * 32, suppression_keys={"k1": "q" * 32}, suppression_key_id="k1")


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.internal:9092")
    monkeypatch.setenv("ASSENT_TOPIC_PREFIX", "staging.")
    monkeypatch.setenv("ASSENT_ENV", "development")
    settings = Plain()
    assert settings.kafka_bootstrap_servers == "kafka.internal:9092"
    assert settings.topic("identity.users.v1") == "staging.identity.users.v1"
    assert settings.group_id == "assent-plain"
