"""Keyset pagination for list endpoints: `limit` and an opaque `cursor` in, the same JSON list out,
and the next page's address in `Link: <...>; rel="next"` and its cursor in `X-Next-Cursor`.

A cursor holds only a position in the ordered list (the sort key of the last item sent), never
who may read it: every page is authorized like the first.
"""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Query, Request, Response

from assent_shared.problems import Problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    limit: int
    after: tuple | None

    def fetch_limit(self) -> int:
        """One row more than asked: whether it exists tells if there is a next page."""
        return self.limit + 1

    def position(self, *types: Callable[[Any], Any]) -> tuple | None:
        """The cursor's values converted to the sort key's types; 422 for a cursor we did not make."""
        if self.after is None:
            return None
        try:
            if len(self.after) != len(types):
                raise ValueError("wrong length")
            return tuple(kind(value) for kind, value in zip(types, self.after, strict=True))
        except (TypeError, ValueError):
            raise Problem(422, "Invalid cursor", "Use the cursor of a previous page as given.") from None


def page(limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Most items in this page."),
         cursor: str | None = Query(None, max_length=512, pattern=r"^[A-Za-z0-9_-]+$",
                                    description="`X-Next-Cursor` of the previous page.")) -> Page:
    """A FastAPI dependency: the page a list request asks for."""
    return Page(limit, _decode(cursor) if cursor else None)


def _encode(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values), default=str).encode()).rstrip(b"=").decode()


def _decode(cursor: str) -> tuple:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise Problem(422, "Invalid cursor", "Use the cursor of a previous page as given.") from None
    if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
        raise Problem(422, "Invalid cursor", "Use the cursor of a previous page as given.")
    return tuple(values)


def respond(request: Request, response: Response, rows: Sequence[T], requested: Page,
            key: Callable[[T], Sequence[Any]]) -> list[T]:
    """The rows of this page; sets the next page's headers when `rows` (fetched with
    `fetch_limit`) holds more than were asked for."""
    shown = list(rows[:requested.limit])
    if len(rows) > requested.limit:
        cursor = _encode(key(shown[-1]))
        response.headers["X-Next-Cursor"] = cursor
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor, limit=requested.limit)}>; rel="next"'
    return shown
