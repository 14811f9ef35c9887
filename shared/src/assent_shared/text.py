"""Text types for public inputs: control characters and lone surrogates are refused at the edge.

PostgreSQL cannot store a NUL, an email header cannot hold a line break, and a lone surrogate
cannot be encoded as UTF-8: each would otherwise fail far from the request, in a consumer or a
dispatcher, where it stops a pipeline instead of answering 4xx.
"""

import re
from typing import Annotated

from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _single_line(value: str) -> str:
    if has_control(value):
        raise ValueError("must not contain control characters or line breaks")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL_BUT_LINES.search(value) is not None:
        raise ValueError("must not contain control characters other than tabs and line breaks")
    return value


def _valid_unicode(value: str) -> str:
    if _SURROGATE.search(value) is not None:
        raise ValueError("must be valid Unicode")
    return value


SINGLE_LINE = AfterValidator(_single_line)
MULTI_LINE = AfterValidator(_multi_line)

Line = Annotated[str, SINGLE_LINE]
"""One line of text: no control character at all (a title, a name, a URL)."""

Text = Annotated[str, MULTI_LINE]
"""Free text: line breaks and tabs allowed, other control characters not (a body, a message)."""

Secret = Annotated[str, AfterValidator(_valid_unicode)]
"""A password: any character a person can type, but valid Unicode, so that it can be hashed."""
