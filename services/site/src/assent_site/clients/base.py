"""What every upstream client shares: one httpx client, admin and user credentials, errors."""

from typing import Any

import httpx


_PAGE = 200


class UpstreamError(Exception):
    """The service refused the request (4xx): its problem+json title and detail are shown to the person."""

    def __init__(self, service: str, status: int, title: str, detail: str | None, retry_after: str | None) -> None:
        super().__init__(f"{service}: {status} {title}")
        self.service = service
        self.status = status
        self.title = title
        self.detail = detail
        self.retry_after = retry_after


class Unavailable(Exception):
    """The service did not answer, or answered 5xx: the page says so instead of guessing."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is not available")
        self.service = service


class Upstream:
    name = "service"

    def __init__(self, http: httpx.AsyncClient, admin_token: str | None) -> None:
        self._http = http
        self._admin_token = admin_token

    async def call(self, method: str, path: str, *, token: str | None = None, admin: bool = False,
                   gpc: bool = False, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if admin:
            headers["Authorization"] = f"Bearer {self._admin_token}"
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        if gpc:
            headers["Sec-GPC"] = "1"
        try:
            response = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(self.name) from exc
        if response.status_code >= 500:
            raise Unavailable(self.name)
        if response.status_code >= 400:
            raise _refusal(self.name, response)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        return response.json() if response.content else None

    async def one_page(self, path: str, params: dict[str, Any] | None = None, limit: int = 50,
                       **kwargs: Any) -> tuple[list, str | None]:
        """One page of a paginated list and the cursor of the next, for pages a person turns."""
        response = await self.call("GET", path, params={**(params or {}), "limit": limit}, **kwargs)
        return response.json(), response.headers.get("x-next-cursor")

    async def every_page(self, path: str, max_pages: int = 50, **kwargs: Any) -> list:
        """A paginated list in full: the pages follow `X-Next-Cursor` (bounded, so a loop cannot run away)."""
        items: list = []
        params: dict[str, Any] = {"limit": _PAGE}
        for _ in range(max_pages):
            response = await self.call("GET", path, params=params, **kwargs)
            items += response.json()
            cursor = response.headers.get("x-next-cursor")
            if not cursor:
                break
            params = {"limit": _PAGE, "cursor": cursor}
        return items


def _refusal(service: str, response: httpx.Response) -> UpstreamError:
    title, detail = response.reason_phrase, None
    try:
        body = response.json()
        if isinstance(body, dict):
            title = str(body.get("title") or title)
            detail = body.get("detail")
            errors = body.get("errors")
            if not detail and isinstance(errors, list) and errors:
                detail = "; ".join(str(e.get("msg", "")) for e in errors if isinstance(e, dict))
    except ValueError:
        pass
    return UpstreamError(service, response.status_code, title, detail, response.headers.get("retry-after"))
