from __future__ import annotations

from services.natural import natural_key, natural_sorted
from services.privacy import mask_phone


def test_numbers_in_names_sort_as_numbers() -> None:
    grids = ["第10网格", "第2网格", "第1网格", "第19网格", "第20网格", "第3网格"]
    assert sorted(grids, key=natural_key) == [
        "第1网格",
        "第2网格",
        "第3网格",
        "第10网格",
        "第19网格",
        "第20网格",
    ]
    # Plain text order puts 第10 before 第2: the bug issue 19 found.
    assert sorted(grids)[:2] == ["第10网格", "第19网格"]


def test_several_numbers_full_width_digits_and_missing_names() -> None:
    assert natural_sorted(["3号楼10单元", "3号楼2单元", "12号楼1单元"], key=str) == [
        "3号楼2单元",
        "3号楼10单元",
        "12号楼1单元",
    ]
    assert natural_sorted(["第１２网格", "第3网格"], key=str) == ["第3网格", "第１２网格"]
    assert natural_sorted([None, "a"], key=lambda s: s) == [None, "a"]
    # Equal names keep their order (a stable sort), so ties fall back to what the read gave.
    assert natural_sorted([("张伟", 2), ("张伟", 1)], key=lambda r: r[0]) == [
        ("张伟", 2),
        ("张伟", 1),
    ]


def test_phones_are_masked_to_the_minimum() -> None:
    assert mask_phone("13800000004") == "138****0004"
    assert mask_phone(None) is None and mask_phone("") is None
    assert mask_phone("12345") == "*****"
