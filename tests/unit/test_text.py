"""services.text: the one rule for control and text-direction characters in typed text, the
request models that use it, and what exports and pages show of text stored before it."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from services.exports import csv_cell
from services.text import (
    FreeText,
    Line,
    UnsafeText,
    check_free_text,
    check_line,
    escape_html,
    first_unsafe,
    shown,
)
from tests.support.request_models import request_fields

REFUSED_EVERYWHERE = [
    "\x00",
    "\x1b",
    "\x07",
    "\x7f",
    "\x85",
    "\x9b",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\ud800",
    "\uffff",
]


@pytest.mark.parametrize("char", REFUSED_EVERYWHERE)
def test_control_and_direction_characters_are_refused_in_names_and_free_text(char: str) -> None:
    with pytest.raises(UnsafeText) as line:
        check_line(f"张三{char}0.01")
    assert f"U+{ord(char):04X}" in str(line.value) and "position 3" in str(line.value)
    with pytest.raises(UnsafeText):
        check_free_text(f"服务很好{char}")


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\u2028", "\u2029"])
def test_line_breaks_are_refused_in_a_name(char: str) -> None:
    with pytest.raises(UnsafeText):
        check_line(f"张{char}三")


def test_free_text_keeps_its_lines_and_ordinary_text_passes_both() -> None:
    assert check_free_text("第一行\r\n第二行\t完") == "第一行\r\n第二行\t完"
    with pytest.raises(UnsafeText):
        check_free_text("段落\u2028分隔")
    for ok in (
        "张三",
        "巩昌镇南城社区",
        "O'Brien-Smith (党员) №7 ©",
        "李·四",
        "😀 emoji ZWJ 👨\u200d👩",
    ):
        assert check_line(ok) == ok
        assert first_unsafe(ok, multiline=True) is None


class _Body(BaseModel):
    name: Line
    comment: FreeText = ""
    branch: Line | None = None


def test_the_annotated_types_answer_a_validation_error_naming_the_field() -> None:
    assert _Body(name="张三", comment="好\n很好").name == "张三"
    with pytest.raises(ValidationError) as exc:
        _Body(name="张三", comment="x", branch="第一\u202e支部")
    errors = exc.value.errors()
    assert [e["loc"] for e in errors] == [("branch",)]
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in errors[0]["msg"]


def test_stored_text_is_shown_without_the_refused_characters() -> None:
    assert shown("张三\u202e01.0\x1b[31m\x00") == "张三01.0[31m"
    assert shown("第一行\n第二行\t完") == "第一行\n第二行\t完"
    assert escape_html('<b>"\u2066李四\u2069"</b>') == "&lt;b&gt;&quot;李四&quot;&lt;/b&gt;"
    # A control character in front of a formula does not hide it from the CSV guard.
    assert csv_cell("\x01=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_cell("\u202e=1+1") == "'=1+1"


def _validators(annotation: Any, metadata: list[Any]) -> list[Any] | None:
    """The validator functions on a str field (also inside `X | None`); None if not text."""
    if annotation is str:
        return [getattr(m, "func", None) for m in metadata]
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated and typing.get_args(arg)[0] is str:
            return [getattr(m, "func", None) for m in arg.__metadata__]
        if arg is str:
            return []
    return None


# Request fields that are identifiers, codes, tokens or machine formats, not text people read.
_NOT_TEXT = (
    "_id",
    "id",
    "token",
    "code",
    "period",
    "phone",
    "role",
    "kind",
    "action",
    "status",
    "assignee_kind",
    "_ids",
    "format",
)


def test_every_text_field_of_every_request_body_carries_the_rule() -> None:
    """A new request field of free text must use Line or FreeText (services.text)."""
    from api.main import create_app
    from services.settings import Settings

    app = create_app(Settings())
    missing = []
    checked = 0
    for label, f in request_fields(app):
        if label.split(".", 1)[1].endswith(_NOT_TEXT):
            continue
        validators = _validators(f.annotation, f.metadata)
        if validators is None:
            continue
        checked += 1
        if check_line not in validators and check_free_text not in validators:
            missing.append(label)
    assert checked >= 15
    assert missing == [], f"text fields without services.text's rule: {missing}"
