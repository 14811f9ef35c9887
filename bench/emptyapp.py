"""The HTTP ceiling: an empty FastAPI endpoint, served by uvicorn with the services' own flags.

`create_app_observed` adds the services' own observability middleware (assent_shared.observability),
`create_app_observed_before` the BaseHTTPMiddleware it replaced, to show what that layer costs per request.
"""

from fastapi import FastAPI, Request, Response

from assent_shared.metrics import Metrics
from assent_shared.observability import Observe


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/empty", status_code=204)
    async def empty(request: Request) -> Response:
        await request.body()  # a real endpoint reads its body; this one reads and drops it
        return Response(status_code=204)

    @app.get("/health/ready")
    async def ready() -> dict:
        return {"status": "ok"}

    return app


def create_app_observed() -> FastAPI:
    """The services' middleware as bootstrap.create_app installs it, with the app.state it reads."""
    app = create_app_observed_state()
    app.add_middleware(Observe)
    return app


def create_app_observed_before() -> FastAPI:
    """The same work as the BaseHTTPMiddleware the services used before (bench/asgi_observe.py)."""
    from bench.asgi_observe import install_before

    app = create_app_observed_state()
    install_before(app)
    return app


def create_app_noop_base() -> FastAPI:
    """A BaseHTTPMiddleware that does nothing: that layer's own cost."""
    app = create_app()

    @app.middleware("http")
    async def noop(request: Request, call_next):
        return await call_next(request)

    return app


def create_app_observed_state() -> FastAPI:
    app = create_app()
    app.state.metrics = Metrics("empty")
    from assent_shared import tracing

    app.state.tracer_provider = tracing.make_provider("empty", None)
    app.state.tracer = app.state.tracer_provider.get_tracer("assent")
    return app
