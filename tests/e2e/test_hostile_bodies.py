"""Bodies built to break a parser (deep nesting, numbers of thousands of digits): 4xx at every service, never 5xx."""

import httpx
import pytest

SERVICES = ["identity", "consent", "mailer", "policy", "telemetry"]
HOSTILE = {"deep nesting": b"[" * 5000, "huge number": b"1" * 5000, "deep object": b'{"a":' * 5000,
           "huge float": b"1" * 5000 + b".5e" + b"9" * 5000}


def _operations_with_bodies(openapi: dict) -> list[tuple[str, str]]:
    found = []
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            if method in ("post", "put", "patch") and "requestBody" in operation:
                found.append((method.upper(), path))
    return found


def _concrete(path: str) -> str:
    # Any well-formed value will do for path parameters: the body must be refused before it matters.
    return (path.replace("{subject_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{user_id}", "00000000-0000-4000-8000-000000000000")
            .replace("{", "").replace("}", ""))


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("body", list(HOSTILE), ids=list(HOSTILE))
async def test_a_body_built_to_break_the_parser_gets_a_4xx(system, service, body):
    async with system.client(service) as client:
        openapi = (await client.get("/openapi.json")).json()
        operations = _operations_with_bodies(openapi)
        assert operations, f"{service} lists no operation with a body"
        for as_admin in (True, False):
            for method, path in operations:
                headers = {"content-type": "application/json", **(system.admin if as_admin else {})}
                response = await client.request(method, _concrete(path), content=HOSTILE[body], headers=headers)
                assert 400 <= response.status_code < 500, f"{method} {path} -> {response.status_code}"
                assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("service", SERVICES)
async def test_a_body_over_the_limit_gets_413_whether_or_not_it_declares_its_length(system, service):
    too_big = b"[" + b" " * (1024 * 1024) + b"]"

    async def streamed():
        for start in range(0, len(too_big), 65536):
            yield too_big[start:start + 65536]

    async with system.client(service) as client:
        method, path = _operations_with_bodies((await client.get("/openapi.json")).json())[0]
        for content in (too_big, streamed()):
            response = await client.request(method, _concrete(path), content=content,
                                            headers={"content-type": "application/json", **system.admin})
            assert response.status_code == 413, f"{method} {path} -> {response.status_code}"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["title"] == "Body too large"
