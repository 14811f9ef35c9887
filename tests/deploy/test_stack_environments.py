"""The one builder of the local stacks' process environments (`make run`, e2e, bench, chaos)."""

from assent_devtools.devstack import environments, services

URLS = {spec.name: f"http://127.0.0.1:{9000 + i}" for i, spec in enumerate(services.ALL)}
DATABASES = {spec.name: f"postgresql://db/{spec.database}" for spec in services.SERVICES}


def build(**overrides):
    return environments.build(**{"environment": "test", "kafka": "127.0.0.1:1", "databases": DATABASES,
                                 "urls": URLS, "smtp_port": 2, "admin_token": "t" * 32, **overrides})


def test_each_service_has_its_own_database_and_finds_every_other_process():
    envs = build()
    assert set(envs) == {spec.name for spec in services.ALL}
    for spec in services.SERVICES:
        assert envs[spec.name]["DATABASE_URL"] == DATABASES[spec.name]
        assert {f"ASSENT_{name.upper()}_URL": url for name, url in URLS.items()}.items() <= envs[spec.name].items()
        assert envs[spec.name]["ASSENT_JWKS_URL"] == URLS["identity"] + "/.well-known/jwks.json"
    assert "DATABASE_URL" not in envs["site"]  # the Site keeps no database


def test_settings_reach_every_process_and_site_settings_only_the_site():
    envs = build(settings={"ASSENT_RELAY_POLL_SECONDS": "0.2"}, site={"ASSENT_SESSION_SECRET": "s"})
    assert {env["ASSENT_RELAY_POLL_SECONDS"] for env in envs.values()} == {"0.2"}
    assert [name for name, env in envs.items() if "ASSENT_SESSION_SECRET" in env] == ["site"]


def test_a_stack_without_the_site_names_its_own_telemetry_sites():
    envs = build(urls={k: v for k, v in URLS.items() if k != "site"}, settings={"ASSENT_SITES": "{}"})
    assert "site" not in envs and envs["telemetry"]["ASSENT_SITES"] == "{}"
