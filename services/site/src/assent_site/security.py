"""Headers every answer gets, and the cookies a request queued, all with the same flags.

A plain ASGI middleware, as in assent_shared.observability: no per-request task, no buffering.
"""

from assent_site.settings import SiteSettings


class SecurityHeaders:
    def __init__(self, app, settings: SiteSettings) -> None:
        self.app = app
        telemetry = settings.telemetry_browser_url
        self._csp = (
            "default-src 'self'; "
            f"script-src 'self' {telemetry}; connect-src 'self' {telemetry}; "
            "img-src 'self' data:; style-src 'self'; font-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        ).encode()
        self._cookie_flags = "; HttpOnly; SameSite=Lax" + ("; Secure" if settings.secure_cookies else "")
        self._hsts = settings.secure_cookies

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", self._csp))
                if b"x-frame-options" not in names:
                    headers.append((b"x-frame-options", b"DENY"))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"permissions-policy", b"interest-cohort=(), camera=(), microphone=(), geolocation=()"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if b"cache-control" not in names:
                    # Pages may show a person's data: no shared cache keeps them.
                    headers.append((b"cache-control", b"no-store"))
                if self._hsts:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                for name, value, max_age, path in state.get("cookies", []):
                    cookie = f"{name}={value}; Path={path}; Max-Age={max_age}{self._cookie_flags}"
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
