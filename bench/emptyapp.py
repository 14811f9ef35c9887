"""The HTTP ceiling: an empty FastAPI endpoint, served by uvicorn with the services' own flags.

`create_app_observed` adds the services' own observability middleware (assent_shared.bootstrap's
`@app.middleware("http")`, a BaseHTTPMiddleware), to show what that layer alone costs per request.
"""

from fastapi import FastAPI, Request, Response

from assent_shared.bootstrap import _install_observability
from assent_shared.metrics import Metrics


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
    app = create_app()
    app.state.metrics = Metrics("empty")
    _install_observability(app)
    return app
