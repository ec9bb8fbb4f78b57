"""Text people type (names, titles, comments, reasons): what is refused on the way in, and what
is removed on the way out (issue 17).

The rule, once:
- **Refused everywhere**: control characters (C0, DEL, C1; Unicode category Cc), lone
  surrogates (Cs: JSON's `"\\ud800"` decodes to one and cannot be written as UTF-8), the
  non-characters U+FFFE/U+FFFF, and every bidirectional formatting character: the embeddings and
  overrides U+202A-U+202E, the isolates U+2066-U+2069 and the marks U+200E, U+200F, U+061C.
  A right-to-left override in a name makes a printed record or an export read differently from
  what is stored (`张三\\u202e0.01` shows as `张三10.0`); the program's text is Chinese and
  English, so no legitimate name needs them, marks included (a mark alone moves neutral
  characters such as digits and dots).
- **Single-line text** (names, titles, labels): also no line breaks (tab, CR, LF, U+2028,
  U+2029).
- **Free text** (comments, descriptions, reasons): tab, CR and LF are allowed.

Input is refused, never silently cleaned: the person who typed it sees a 422 naming the field and
the character. What is already stored is shown through `shown()` (exports, server-rendered
pages), which removes the same characters.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
LINE_BREAKS = frozenset("\t\n\r\u2028\u2029")
_FREE_TEXT_ALLOWED = frozenset("\t\n\r")

# The characters `shown()` removes: all of the above but the whitespace free text may hold.
_NOT_SHOWN = re.compile(
    "[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
    + "".join(sorted(BIDI_CONTROLS))
    + "]"
)


class UnsafeText(ValueError):
    """The text holds a character refused by the rule above; the message names it."""

    def __init__(self, char: str, position: int) -> None:
        self.char = char
        self.position = position
        super().__init__(
            f"contains the invisible control character {describe(char)} at position "
            f"{position + 1}; remove it (control and text-direction characters are not allowed)"
        )


def describe(char: str) -> str:
    """`U+202E (RIGHT-TO-LEFT OVERRIDE)`."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _refused(char: str, multiline: bool) -> bool:
    if char in BIDI_CONTROLS:
        return True
    if char in LINE_BREAKS:
        return not (multiline and char in _FREE_TEXT_ALLOWED)
    if char in "\ufffe\uffff":
        return True
    return unicodedata.category(char) in ("Cc", "Cs")


def first_unsafe(value: str, multiline: bool = False) -> int | None:
    """The index of the first refused character, or None if the text is clean."""
    for i, char in enumerate(value):
        # Fast path: printable ASCII and CJK are never refused.
        if " " <= char <= "~" or "\u4e00" <= char <= "\u9fff":
            continue
        if _refused(char, multiline):
            return i
    return None


def check_line(value: str) -> str:
    """A single-line text (a name, a title) as typed, or UnsafeText."""
    i = first_unsafe(value, multiline=False)
    if i is not None:
        raise UnsafeText(value[i], i)
    return value


def check_free_text(value: str) -> str:
    """A free text (a comment, a description) that may span lines, or UnsafeText."""
    i = first_unsafe(value, multiline=True)
    if i is not None:
        raise UnsafeText(value[i], i)
    return value


def shown(value: str) -> str:
    """Stored text as it may be shown or written to a file: the refused characters removed
    (tab, CR and LF kept; a single-line field never stored them since the rule applied)."""
    return _NOT_SHOWN.sub("", value)


# For request models: `name: Line = Field(...)`, `comment: FreeText = Field(...)`.
Line = Annotated[str, AfterValidator(check_line)]
FreeText = Annotated[str, AfterValidator(check_free_text)]


def escape_html(value: str) -> str:
    """Stored text for a server-rendered page: `shown()`, then HTML-escaped (quotes too, so it
    is safe in an attribute)."""
    return html.escape(shown(value), quote=True)
