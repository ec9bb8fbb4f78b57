"""Natural order for names people read: 第2网格 before 第10网格, 2号楼 before 10号楼.

One rule for every list a person scans (grids, stations, members, rankings): the reads sort
with `natural_key`, and the pages keep the order the API gives them, so a grid list reads the
same on the dashboard, in its charts and in an export. Runs of digits compare as numbers (ASCII
and full-width digits alike); Chinese numerals (第十网格) compare as text, as typed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str | None) -> tuple[tuple[int, int | str], ...]:
    """A sort key: text parts compare as text, digit runs as numbers (`None` sorts as "")."""
    # NFKC makes full-width digits (１２) and letters ordinary ones, so they sort together.
    s = unicodedata.normalize("NFKC", text or "")
    out: list[tuple[int, int | str]] = []
    for i, part in enumerate(_DIGITS.split(s)):
        if not part:
            continue
        # (0, n) for numbers, (1, text) for text: a number sorts before text at the same place.
        out.append((0, int(part)) if i % 2 else (1, part.casefold()))
    return tuple(out)


def natural_sorted(items: Iterable[T], key: Callable[[T], str | None]) -> list[T]:
    """`items` in natural order of `key(item)`; equal names keep their given order."""
    return sorted(items, key=lambda item: natural_key(key(item)))
