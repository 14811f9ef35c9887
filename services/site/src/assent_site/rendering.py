"""Turning the services' answers into HTML: policy Markdown, diffs, dates."""

import difflib
from datetime import datetime
from importlib import resources

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

# Raw HTML in a policy text is shown as text, never run: only Markdown becomes markup.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown(text: str) -> Markup:
    return Markup(_markdown.render(text))


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """Each line of a unified diff with its kind: add, remove, hunk or same."""
    kinds = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            continue
        kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "same")
        kinds.append((kind, line))
    return kinds


def unified_diff(old: str, new: str, old_name: str, new_name: str) -> str:
    return "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), old_name, new_name, lineterm=""))


def when(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%d %B %Y, %H:%M UTC") if moment.utcoffset() is not None else moment.isoformat()


def day(value: str | None) -> str:
    try:
        return datetime.fromisoformat(value).strftime("%d %B %Y") if value else ""
    except ValueError:
        return value or ""


def templates() -> Environment:
    folder = str(resources.files("assent_site").joinpath("templates"))
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(markdown=markdown, when=when, day=day)
    return env
