"""Records of service (服务证明): "who records, certifies" (谁记录谁证明).

A record is issued from the warehouse's own figures and stored as an event; the paper carries a
verification code. The code is an HMAC of the record's content digest, so it cannot be guessed
or enumerated, and `GET /v1/verify/{code}` returns what was issued: anyone holding the paper
compares, and a figure changed on the paper (or passed as a query to verify) does not match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, datetime
from typing import Any

from services.events import ServiceRecordIssued
from services.events.records import RecordedSession
from services.privacy import mask_volunteer_no
from services.settings import Settings
from services.text import shown

CODE_LEN = 16
# Crockford-like alphabet without 0/O and 1/I: the code is read off paper and typed by hand.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def content_digest(
    member_id: str,
    member_name: str,
    period_from: date,
    period_to: date,
    hours: float,
    sessions: int,
    items: list[RecordedSession],
    issued_at: datetime,
) -> str:
    canonical = json.dumps(
        {
            "member_id": member_id,
            "member_name": member_name,
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "hours": f"{hours:.2f}",
            "sessions": sessions,
            "items": [i.model_dump(mode="json") for i in items],
            "issued_at": issued_at.isoformat(),
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def verification_code(settings: Settings, digest: str) -> str:
    key = hmac.new(settings.secret_key.encode(), b"service-record:v1", hashlib.sha256).digest()
    mac = hmac.new(key, digest.encode(), hashlib.sha256).digest()
    raw = base64.b32encode(mac).decode()
    # Map base32 onto the unambiguous alphabet (both have 32 symbols).
    table = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)
    return raw.translate(table)[:CODE_LEN]


def volunteer_no(member_id: str, national_no: str | None = None) -> str:
    """The volunteer number a record prints: the member's national volunteer number (志愿者编号)
    when the registry holds one, else the member's id, either with its middle masked. A record
    is a public page (whoever holds the code reads it), so it never carries a full identifier;
    the ends are enough to match it against the member's own record."""
    if national_no:
        return mask_volunteer_no(national_no) or ""
    prefix, _, rest = member_id.partition("_")
    body = rest or prefix
    shown_ends = body if len(body) <= 8 else f"{body[:4]}{'*' * (len(body) - 8)}{body[-4:]}"
    return f"{prefix}_{shown_ends}" if rest else shown_ends


def certificate_no(code: str) -> str:
    """The certificate number (证明编号) on the paper: the record's verification code, which is
    unique per record and is what `/verify/{code}` takes."""
    return format_code(code)


def normalize_code(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


def format_code(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def mismatches(record: ServiceRecordIssued, claimed: dict[str, Any]) -> list[str]:
    """Names of the claimed figures that differ from what was issued."""
    issued: dict[str, Any] = {
        # As printed: the paper shows a name stored before services.text's rule without its
        # control and text-direction characters, and so is compared.
        "member_name": shown(record.member_name),
        "hours": f"{record.hours:.2f}",
        "sessions": str(record.sessions),
        "period_from": record.period_from.isoformat(),
        "period_to": record.period_to.isoformat(),
    }
    out = []
    for key, value in claimed.items():
        if value is None:
            continue
        want = issued[key]
        got = f"{float(value):.2f}" if key == "hours" else str(value)
        if key == "member_name":
            got = shown(got)
        if got != want:
            out.append(key)
    return out
