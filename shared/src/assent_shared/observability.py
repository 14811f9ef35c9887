"""Per request: a correlation id, a server span, and the request metrics.

A plain ASGI middleware: Starlette's BaseHTTPMiddleware (`@app.middleware("http")`) starts a
task and streams every response through memory per request, which cost 2.6x in requests/s on
the empty-endpoint benchmark (docs/performance.md).
"""

import time

from opentelemetry import trace

from assent_shared import tracing
from assent_shared.logs import bind_correlation_id, new_correlation_id

HEADER = b"x-correlation-id"


class Observe:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get(HEADER.decode(), "")
        correlation_id = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else new_correlation_id()
        bind_correlation_id(correlation_id)
        started, status = time.perf_counter(), [500]
        state = scope["app"].state

        async def send_with_header(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, correlation_id.encode())]
            await send(message)

        method = scope["method"]
        with state.tracer.start_as_current_span(f"{method} {scope['path']}", kind=trace.SpanKind.SERVER,
                                                context=tracing.extract(headers)) as span:
            try:
                await self.app(scope, receive, send_with_header)
            finally:
                template = getattr(scope.get("route"), "path", "unmatched")
                span.update_name(f"{method} {template}")
                span.set_attribute("http.response.status_code", status[0])
                state.metrics.http_requests.labels(method, template, str(status[0])).inc()
                state.metrics.http_latency.labels(method, template).observe(time.perf_counter() - started)
