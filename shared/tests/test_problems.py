"""Every error a service answers is problem+json; a dependency that is down for now is a 503, not a 500."""

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from assent_shared.problems import MEDIA_TYPE, install_problem_handlers


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


async def answer(error: Exception) -> httpx.Response:
    transport = httpx.ASGITransport(app=app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connection refused"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.InterfaceError("connection is closed"),
], ids=["refused", "admin-shutdown", "starting-up", "closed"])
async def test_a_dependency_that_is_down_for_now_is_a_503_to_retry(error):
    response = await answer(error)
    assert response.status_code == 503
    assert response.headers["content-type"] == MEDIA_TYPE and response.headers["retry-after"] == "5"
    assert response.json()["title"] == "Service unavailable"
    assert str(error) not in response.text  # nothing of the internals


async def test_a_bug_is_still_a_500_and_says_nothing_of_itself():
    response = await answer(KeyError("secret detail"))
    assert response.status_code == 500 and response.json() == {"type": "about:blank", "title": "Internal error",
                                                               "status": 500}
