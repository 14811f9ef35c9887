"""The services' observability middleware as it was before the fix, kept for the before/after figure.

It did the same work as assent_shared.observability.Observe, as a Starlette BaseHTTPMiddleware
(`@app.middleware("http")`), which per request starts a task and pipes the response through memory.
Nothing in the services uses this module.
"""

import time

from fastapi import FastAPI, Request
from opentelemetry import trace

from assent_shared import tracing
from assent_shared.logs import bind_correlation_id, new_correlation_id


def install_before(app: FastAPI) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next):
        incoming = request.headers.get("x-correlation-id", "")
        correlation_id = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else new_correlation_id()
        bind_correlation_id(correlation_id)
        started = time.perf_counter()
        with request.app.state.tracer.start_as_current_span(
            f"{request.method} {request.url.path}", kind=trace.SpanKind.SERVER, context=tracing.extract(request.headers)
        ) as span:
            response = await call_next(request)
            template = getattr(request.scope.get("route"), "path", "unmatched")
            span.update_name(f"{request.method} {template}")
        metrics = request.app.state.metrics
        metrics.http_requests.labels(request.method, template, str(response.status_code)).inc()
        metrics.http_latency.labels(request.method, template).observe(time.perf_counter() - started)
        response.headers["x-correlation-id"] = correlation_id
        return response
