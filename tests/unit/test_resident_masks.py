"""A micro-wish's resident as every reader of the wish sees them: the name masked to the surname
(王**, 欧阳**) and of the free-text contact only its phones, masked; an address or a name in the
contact withheld (the logged reveal gives both in full)."""

from __future__ import annotations

import pytest

from services.privacy import contact_phones, contact_withheld, mask_name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("王大妈", "王**"),
        ("李大爷", "李**"),
        ("张伟", "张**"),
        ("王", "王**"),
        ("欧阳娜娜", "欧阳**"),
        ("司马光", "司马**"),
        ("欧阳", "欧**"),  # two characters: a surname and a given name, not a 复姓 alone
        (" 赵四 ", "赵**"),
        ("Li Lei", "L**"),
        ("", ""),
        (None, None),
    ],
)
def test_a_name_shows_its_surname_only(name: str | None, shown: str | None) -> None:
    assert mask_name(name) == shown


def test_the_length_of_a_given_name_is_withheld_too() -> None:
    assert mask_name("王一") == mask_name("王一二") == mask_name("王一二三") == "王**"


@pytest.mark.parametrize(
    ("contact", "shown", "withheld"),
    [
        ("李大爷 139 1234 5678，南关小区3号楼", "139****5678", True),
        ("13912345678", "139****5678", False),
        ("+86 139-1234-5678", "139****5678", False),
        ("13912345678 / 0932-6621234", "139****5678、093****1234", False),
        ("南关小区3号楼2单元", "", True),
        ("找王阿姨", "", True),
        ("", "", False),
        (None, "", False),
    ],
)
def test_a_contact_shows_only_its_phones_masked(
    contact: str | None, shown: str, withheld: bool
) -> None:
    assert contact_phones(contact) == shown
    assert contact_withheld(contact) is withheld
    for secret in ("南关", "3号楼", "李大爷", "王阿姨", "12345678", "6621234"):
        assert secret not in contact_phones(contact)
