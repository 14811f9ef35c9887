"""OpenTelemetry traces across HTTP, the outbox, Kafka and on to SMTP and webhooks.

Trace context always travels (W3C `traceparent` in event headers), so one request's trace id
can be followed through every service's logs. Spans leave the process only when an OTLP
endpoint is configured; without one nothing is exported and nothing is buffered.
"""

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def make_provider(service: str, otlp_endpoint: str | None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": f"assent-{service}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint}/v1/traces")))
    return provider


def extract(carrier: Mapping[str, str]) -> Context:
    return _PROPAGATOR.extract(dict(carrier))


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context:
    return extract({"traceparent": traceparent} if traceparent else {})


def current_ids() -> dict[str, str]:
    """trace_id and span_id of the current span, for logs; empty outside any trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
