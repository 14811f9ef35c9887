"""The Site's composition root: `uvicorn --factory assent_site.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from urllib.parse import quote

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from assent_shared import tracing
from assent_shared.clients import Forwarding
from assent_shared.logs import configure_logging
from assent_shared.metrics import Metrics
from assent_shared.observability import Observe
from assent_site.clients.base import Unavailable, UpstreamError
from assent_site.clients.consent import ConsentClient
from assent_site.clients.identity import IdentityClient
from assent_site.clients.mailer import MailerClient
from assent_site.clients.policy import PolicyClient
from assent_site.clients.support import SupportClient
from assent_site.clients.telemetry import TelemetryClient
from assent_site.deps import Upstreams, Wiring
from assent_site.rendering import templates
from assent_site.routes import account, admin, contact, cookies, inbox, mails, mydata, public
from assent_site.sealing import CsrfTokens, Sealer
from assent_site.security import SecurityHeaders
from assent_site.settings import SiteSettings
from assent_site.web import AdminRequired, CsrfRefused, SignInRequired, end_session, page, redirect

log = structlog.get_logger(__name__)


def create_app(settings: SiteSettings | None = None, upstreams: Upstreams | None = None) -> FastAPI:
    """`upstreams` replaces the HTTP clients of the services (the unit lane's in-memory fakes)."""
    settings = settings or SiteSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        clients = [] if upstreams is not None else [
            httpx.AsyncClient(base_url=url, timeout=settings.upstream_timeout_seconds)
            for url in (settings.identity_url, settings.consent_url, settings.mailer_url, settings.policy_url,
                        settings.telemetry_url, settings.support_url)]
        forwarding = Forwarding(settings.trusted_proxies if settings.trust_forwarded_for else (),
                                trust_any_peer=settings.trust_forwarded_for and settings.environment != "production")
        app.state.service = Wiring.of(upstreams or _http_upstreams(clients, settings.admin_token), settings=settings,
                                      sealer=Sealer(settings.session_secret),
                                      csrf=CsrfTokens(settings.session_secret), templates=templates(),
                                      forwarding=forwarding)
        log.info("service started")
        try:
            yield
        finally:
            for client in clients:
                await client.aclose()
            app.state.tracer_provider.shutdown()
            log.info("service stopped")

    app = FastAPI(title="Assent Site", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.metrics = Metrics(settings.service_name)
    app.state.tracer_provider = tracing.make_provider(settings.service_name, settings.otlp_endpoint)
    app.state.tracer = app.state.tracer_provider.get_tracer("assent")
    _install_error_pages(app)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(Observe)
    app.mount("/static", StaticFiles(directory=str(resources.files("assent_site").joinpath("static"))), "static")
    for router in (public.router, account.router, mydata.router, cookies.router, contact.router, admin.router,
                   inbox.router, mails.router):
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _http_upstreams(clients: list[httpx.AsyncClient], token: str | None) -> Upstreams:
    identity, consent, mailer, policy, telemetry, support = clients
    return Upstreams(IdentityClient(identity, token), ConsentClient(consent, token), MailerClient(mailer, token),
                     PolicyClient(policy, token), TelemetryClient(telemetry, token), SupportClient(support, token))


def _here(request: Request) -> str:
    """Where to come back to after signing in: this page, with its query (a reply link's, say)."""
    return request.url.path + (f"?{request.url.query}" if request.method == "GET" and request.url.query else "")


def _install_error_pages(app: FastAPI) -> None:
    """Every failure is a page a person can read, never a stack trace or a bare JSON body."""

    async def error(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
        return await page(request, "error.html", status=status, title=title, detail=detail)

    @app.exception_handler(SignInRequired)
    async def on_sign_in(request: Request, _exc: SignInRequired) -> Response:
        return redirect(f"/signin?next={quote(_here(request), safe='/')}")

    @app.exception_handler(AdminRequired)
    async def on_admin(request: Request, _exc: AdminRequired) -> Response:
        return redirect(f"/admin/signin?next={quote(_here(request), safe='/')}")

    @app.exception_handler(CsrfRefused)
    async def on_csrf(request: Request, _exc: CsrfRefused) -> Response:
        return await error(request, 403, "This form has expired",
                           "The form was too old or was not sent from this site. Go back, reload the page and "
                           "send it again.")

    @app.exception_handler(UpstreamError)
    async def on_refused(request: Request, exc: UpstreamError) -> Response:
        if exc.status == 401:
            end_session(request)
            return redirect(f"/signin?next={request.url.path}")
        status = exc.status if exc.status in (403, 404, 409, 410, 429) else 400
        return await error(request, status, exc.title, exc.detail or "")

    @app.exception_handler(Unavailable)
    async def on_unavailable(request: Request, exc: Unavailable) -> Response:
        log.warning("upstream unavailable", upstream=exc.service)
        return HTMLResponse(
            f"<!doctype html><html lang=en><title>Unavailable</title><h1>Please try again soon</h1>"
            f"<p>Part of the site ({exc.service}) is not answering right now.</p>", status_code=503)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, _exc: RequestValidationError) -> Response:
        return await error(request, 400, "That address is not right", "A part of the link is missing or malformed.")

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return await error(request, 404, "Page not found", "There is no page at this address.")
        return await error(request, exc.status_code, str(exc.detail), "")
