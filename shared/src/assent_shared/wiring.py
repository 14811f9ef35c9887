"""Route dependencies on what a service's composition root built (its `wire` result, `app.state.service`)."""

from typing import Any

from fastapi import Depends, Request


def wired(name: str) -> Any:
    """`Annotated[T, wired("x")]`: the route receives attribute `x` of the service's wiring."""

    def collaborator(request: Request) -> Any:
        return getattr(request.app.state.service, name)

    collaborator.__name__ = f"wired_{name}"
    return Depends(collaborator)
