"""Signed tokens: the station token printed in QR codes, and bearer tokens for API callers.

A station token is `v{key_version}.{station_id}.{signature}`: short enough for a QR code a
phone reads at a glance, and any change to it (the station id, the version or the signature)
fails verification. Keys are derived per purpose and version from SECRET_KEY, so rotating a
station key means a new version while posters with the old one keep working until withdrawn.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import jwt

from services.settings import Settings

Role = Literal["member", "organizer", "hr", "admin"]
ROLES: tuple[Role, ...] = ("member", "organizer", "hr", "admin")

_STATION_TOKEN = re.compile(r"^v(\d{1,4})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{22})$")


class InvalidToken(ValueError):
    pass


def _key(settings: Settings, purpose: str, version: int) -> bytes:
    return _derive(settings.secret_key, purpose, version)


@lru_cache(maxsize=64)
def _derive(secret_key: str, purpose: str, version: int) -> bytes:
    # Every token verified derives its key: an HMAC per call saved on each request.
    return hmac.new(secret_key.encode(), f"{purpose}:v{version}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _station_sig(settings: Settings, version: int, station_id: str) -> str:
    mac = hmac.new(
        _key(settings, "station", version), f"v{version}.{station_id}".encode(), hashlib.sha256
    )
    return _b64(mac.digest()[:16])


def sign_station(settings: Settings, station_id: str, version: int | None = None) -> str:
    v = settings.station_key_version if version is None else version
    return f"v{v}.{station_id}.{_station_sig(settings, v, station_id)}"


def verify_station(settings: Settings, token: str) -> str:
    """Returns the station id, or raises InvalidToken."""
    m = _STATION_TOKEN.match(token)
    if not m:
        raise InvalidToken("malformed station token")
    version, station_id, sig = int(m.group(1)), m.group(2), m.group(3)
    if version > settings.station_key_version or version < 1:
        raise InvalidToken("unknown station key version")
    if not hmac.compare_digest(sig, _station_sig(settings, version, station_id)):
        raise InvalidToken("station token signature does not match")
    return station_id


@dataclass(frozen=True)
class Principal:
    role: Role
    subject_id: str  # member id, community id (organizer), unit id (hr), "admin"
    token_id: str
    expires_at: int | None


def issue_bearer(settings: Settings, role: Role, subject_id: str, ttl_s: int | None = None) -> str:
    now = int(time.time())
    claims = {
        "role": role,
        "sub": subject_id,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + (settings.token_ttl_s if ttl_s is None else ttl_s),
    }
    return jwt.encode(claims, _key(settings, "bearer", 1), algorithm="HS256")


# Tokens already verified, so a member's next scan skips the JWT decode (~35 µs of the ~0.75 ms
# a check-in costs the API; bench/findings.md, section 2). Only valid tokens are kept, keyed
# with the secret they were checked against; expiry is re-checked on every hit and revocation
# is checked by the caller on every request, so a hit decides nothing a decode would not.
_VERIFIED: dict[tuple[str, str], Principal] = {}
_VERIFIED_MAX = 100_000


def verify_bearer(settings: Settings, token: str) -> Principal:
    if hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        return Principal("admin", "admin", "admin-token", None)
    key = (settings.secret_key, token)
    known = _VERIFIED.get(key)
    if known is not None:
        if known.expires_at is not None and known.expires_at <= time.time():
            _VERIFIED.pop(key, None)  # (threads of sync routes verify too)
            raise InvalidToken("token expired")
        return known
    principal = _decode_bearer(settings, token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = principal
    return principal


def _decode_bearer(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            _key(settings, "bearer", 1),
            algorithms=["HS256"],
            options={"require": ["exp", "sub", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid token") from exc
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidToken("invalid token role")
    return Principal(role, str(claims["sub"]), str(claims["jti"]), int(claims["exp"]))
