"""Every error code the API can answer has a Chinese message that says what to do next, and no
page shows the server's (English) `message` (issue 19)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from api.pages import messages
from tests.support.error_codes import ROOT, api_error_codes, codes_in

CJK = re.compile(r"[\u4e00-\u9fff]")
STATIC = ROOT / "api" / "pages" / "static"


def test_the_walk_finds_the_codes_people_hit() -> None:
    codes = api_error_codes()
    # One of each way a code is made: ApiError, the registry, the importer, the lists, the
    # status maps, the body limits, and codes built from a kind.
    for code in (
        "member_not_active",
        "phone_taken",
        "too_many_rows",
        "already_claimed",
        "not_found",
        "http_error",
        "file_too_large",
        "payload_too_large",
        "*_not_found",
        "unknown_*",
        "invalid_*",
    ):
        assert code in codes, code
    assert len(codes) > 70


def test_every_code_has_a_chinese_message() -> None:
    missing = sorted(c for c in api_error_codes() if messages.message_for(c) is None)
    assert not missing, f"error codes without a Chinese message in api/pages/messages.py: {missing}"
    for code in api_error_codes():
        if "*" in code:
            assert code in messages.PATTERNS, code


def test_a_new_code_without_a_message_is_caught() -> None:
    tree = ast.parse(
        'raise ApiError(409, "brand_new_refusal", "x")\n'
        'raise Invalid(f"invalid_{kind.name}", "y")\n'
        'raise FileRejected(422, "another_new_one", "z")\n'
    )
    found = codes_in(tree)
    assert found == {"brand_new_refusal", "invalid_*", "another_new_one"}
    assert messages.message_for("brand_new_refusal") is None
    assert messages.message_for("invalid_*") is not None


def test_messages_are_chinese_and_say_what_to_do() -> None:
    texts = [*messages.MESSAGES.values(), *messages.PATTERNS.values(), messages.NETWORK]
    texts += [*messages.BY_STATUS.values(), messages.UNKNOWN]
    for text in texts:
        assert CJK.search(text), text
        assert not re.search(r"[A-Za-z]{4,}", text.replace("XLSX", "")), text
    assert messages.message_for("member_not_active") == "您的报到关系已变更，请联系社区"
    assert messages.message_for("grid_not_found") == messages.PATTERNS["*_not_found"]
    assert messages.message_for("member_not_found") == messages.MESSAGES["member_not_found"]
    assert messages.message_for("_not_found") is None


def test_the_script_carries_the_catalog() -> None:
    js = messages.script()
    assert "function errorText(code, status)" in js
    assert "async function responseErrorText(r)" in js
    for code in messages.MESSAGES:
        assert f'"{code}"' in js


def test_every_page_loads_the_catalog_before_its_script() -> None:
    base = (ROOT / "api" / "pages" / "templates" / "base.html").read_text(encoding="utf-8")
    assert base.index('src="/messages.js"') < base.index('src="/static/{script}"')


def test_no_page_shows_the_servers_message() -> None:
    shows_message = re.compile(r"error\)?\s*\.\s*message|\[\s*[\"']message[\"']\s*\]")
    offenders = []
    for path in sorted(STATIC.glob("*.js")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if shows_message.search(line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_the_scan_page_has_no_refusal_list_of_its_own() -> None:
    # One catalog: the member's pages ask errorText, never a private map of codes.
    for name in ("app.js", "history.js", "screen.js"):
        text = (STATIC / name).read_text(encoding="utf-8")
        assert "errorText(" in text, name
        for code in messages.MESSAGES:
            assert not re.search(rf"\b{code}\s*:", text), (name, code)


def test_pattern_matching_needs_a_kind() -> None:
    assert messages.message_for("unknown_unit") is not None
    assert messages.message_for("unknown_") is None
    assert Path(messages.__file__).name == "messages.py"
