"""Route dependencies on what a service's composition root built (its `wire` result, `app.state.service`)
and on the runtime the shared lifespan built (`app.state.runtime`)."""

from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request

if TYPE_CHECKING:
    from assent_shared.bootstrap import Runtime


def runtime(request: Request) -> "Runtime":
    """`Depends(runtime)`: the instance's settings, token verifier and the rest the lifespan built."""
    return request.app.state.runtime


def wired(name: str) -> Any:
    """`Annotated[T, wired("x")]`: the route receives attribute `x` of the service's wiring."""

    def collaborator(request: Request) -> Any:
        return getattr(request.app.state.service, name)

    collaborator.__name__ = f"wired_{name}"
    return Depends(collaborator)
