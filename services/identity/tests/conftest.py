import pytest

from assent_identity.main import create_app
from assent_identity.settings import IdentitySettings
from assent_devtools.testing.apps import base_settings, serve
from assent_devtools.testing.helpers import unique


@pytest.fixture
async def identity(infra, new_database):
    prefix = unique("it-") + "."
    database = await new_database("identity")
    settings = IdentitySettings(**base_settings(infra, database, prefix, argon2_memory_kib=1024, argon2_time_cost=1,
                                                key_cache_seconds=1,
                                                consent_url="http://127.0.0.1:9", mailer_url="http://127.0.0.1:9",
                                                policy_url="http://127.0.0.1:9"))
    async with serve(create_app(settings)) as client:
        client.prefix = prefix
        client.database = database
        client.admin = {"Authorization": f"Bearer {settings.admin_token}"}
        client.settings = settings
        yield client


@pytest.fixture
def signup(identity):
    """Registers a new user and signs in: (user, email, session)."""

    async def make(password="a fine long secret"):
        email = f"{unique('u')}@example.com"
        created = await identity.post("/v1/users", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
        login = await identity.post("/v1/sessions", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return created.json(), email, login.json()

    return make
