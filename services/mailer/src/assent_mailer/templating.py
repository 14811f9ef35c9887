"""The mails' templates: files under templates/<mail>/<locale>.{txt,html}.j2, rendered by Jinja2.

The subject is the text template's `subject` block, so each language keeps its subject beside its
body. A subject that a variable broke into lines is refused (ValueError), never folded: a line
break in a header is an injection, and the delivery fails alone.
"""

from dataclasses import dataclass
from importlib.resources import files

import jinja2
from markupsafe import Markup, escape

MAILS = ("welcome", "verification", "reset", "newsletter", "policy_change", "order_update", "inquiry_reply")
DEFAULT_LOCALE = "en"
FORMATS = ("text", "html")


class UnknownTemplate(LookupError):
    """No such mail, or no such language of it."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def paragraphs(text: str) -> Markup:
    """Plain text someone typed (a newsletter, a reply) as escaped HTML paragraphs."""
    blocks = [b for b in str(text).replace("\r\n", "\n").split("\n\n") if b.strip()]
    return Markup("\n").join(Markup("<p>{}</p>").format(Markup("<br>\n").join(map(escape, b.split("\n"))))
                              for b in blocks)


def one_line(text: str) -> str:
    text = text.strip()
    if "\r" in text or "\n" in text:
        raise ValueError("the subject must be one line")
    return text


class Templates:
    def __init__(self) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("assent_mailer", "templates"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            undefined=jinja2.StrictUndefined,  # a missing variable fails the mail, never renders empty
            trim_blocks=True, lstrip_blocks=True,
        )
        self._env.filters["paragraphs"] = paragraphs
        root = files("assent_mailer") / "templates"
        self._locales = {
            mail: tuple(sorted({p.name.split(".")[0] for p in (root / mail).iterdir() if p.name.endswith(".txt.j2")}))
            for mail in MAILS
        }

    def locales(self, mail: str) -> tuple[str, ...]:
        if mail not in self._locales:
            raise UnknownTemplate(mail)
        return self._locales[mail]

    def choose_locale(self, mail: str, wanted: str | None) -> str:
        """The user's language if the mail has it (`de-AT` finds `de`), else English."""
        available = self.locales(mail)
        for candidate in ((wanted or "").strip().lower(), (wanted or "").split("-")[0].strip().lower()):
            if candidate in available:
                return candidate
        return DEFAULT_LOCALE

    def render(self, mail: str, locale: str, variables: dict) -> Rendered:
        if locale not in self.locales(mail):
            raise UnknownTemplate(f"{mail}/{locale}")
        values = {**variables, "locale": locale}
        text = self._env.get_template(f"{mail}/{locale}.txt.j2")
        subject = one_line("".join(text.blocks["subject"](text.new_context(values))))
        html = self._env.get_template(f"{mail}/{locale}.html.j2")
        return Rendered(subject, text.render(values).strip() + "\n", html.render({**values, "subject": subject}))
