"""Structured JSON logs; a correlation id bound per request or event follows into what it causes."""

import logging
import sys
from uuid import uuid4

import structlog
from structlog.contextvars import bind_contextvars, get_contextvars

_CORRELATION = "correlation_id"


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper(), force=True)
    # httpx logs every request URL at INFO: a token or an address in a query must not reach the logs.
    for noisy in ("aiokafka", "faststream", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_service(service),
            _add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.EventRenamer("message"),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


def _add_trace_ids(_logger: object, _name: str, event: dict) -> dict:
    from assent_shared.tracing import current_ids

    event.update(current_ids())
    return event


def _add_service(service: str) -> structlog.types.Processor:
    def processor(_logger: object, _name: str, event: dict) -> dict:
        event.setdefault("service", service)
        return event

    return processor


def new_correlation_id() -> str:
    return uuid4().hex


def bind_correlation_id(value: str) -> None:
    bind_contextvars(**{_CORRELATION: value})


def current_correlation_id() -> str | None:
    return get_contextvars().get(_CORRELATION)
