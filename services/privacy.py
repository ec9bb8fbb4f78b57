"""What of a person's data a list shows (个人信息保护法: the minimum for the purpose).

A phone number is shown in full only where the reader must call the person (the organizer's
list of who has not served yet); rosters, assessments and exports for offices show it masked.
"""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """138****0004: enough to tell two members apart and to match a number someone gives."""
    if not phone:
        return None
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
