"""The console's preview of every mail the system sends, in each language, from the mailer's templates."""

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from assent_site.deps import Mailer
from assent_site.web import page, require_admin

router = APIRouter(prefix="/admin", tags=["console"])
_MAIL = Path(min_length=1, max_length=64, pattern=r"^[a-z_]+$")
_LOCALE = Query(default="en", min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
# The preview is a mail's HTML shown in a frame of the console: nothing in it may run, load or navigate.
_FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"


@router.get("/templates", response_class=HTMLResponse)
async def templates(request: Request, mailer: Mailer) -> HTMLResponse:
    require_admin(request)
    return await page(request, "admin/templates.html", mails=await mailer.templates())


@router.get("/templates/{mail}", response_class=HTMLResponse)
async def preview(request: Request, mailer: Mailer, mail: str = _MAIL, locale: str = _LOCALE) -> HTMLResponse:
    """The mail's subject, its HTML part in a sandboxed frame and its text part, with sample values."""
    require_admin(request)
    subject, text = await mailer.preview(mail, locale, "text")
    return await page(request, "admin/template.html", mail=mail, locale=locale, subject=subject, text=text,
                      mails=await mailer.templates())


@router.get("/templates/{mail}/preview.html")
async def preview_html(request: Request, mailer: Mailer, mail: str = _MAIL, locale: str = _LOCALE) -> Response:
    require_admin(request)
    _, html = await mailer.preview(mail, locale, "html")
    return HTMLResponse(html, headers={"Content-Security-Policy": _FRAME_POLICY, "X-Frame-Options": "SAMEORIGIN"})
