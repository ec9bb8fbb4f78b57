"""Signed tokens: the station token printed in QR codes, and bearer tokens for API callers.

A station token is `v{key_version}.{station_id}.{signature}`: short enough for a QR code a
phone reads at a glance, and any change to it (the station id, the version or the signature)
fails verification. Keys are derived per purpose and version from SECRET_KEY. A bearer token
names its version in the JWT header (`kid: "v2"`; a token without one is version 1, as issued
before versions existed). Rotating either key is a new version (STATION_KEY_VERSION,
BEARER_KEY_VERSION): it signs from then on, and tokens of older versions verify until the grace
end (STATION_KEY_GRACE_UNTIL, BEARER_KEY_GRACE_UNTIL), never after it (docs/security.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

import jwt

from services.settings import Settings

# `county`: the county office (组织部), subject "county"; `town`: a town office, subject a town id.
Role = Literal["member", "organizer", "hr", "admin", "county", "town"]
ROLES: tuple[Role, ...] = ("member", "organizer", "hr", "admin", "county", "town")

_STATION_TOKEN = re.compile(r"^v(\d{1,4})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{22})$")
_KID = re.compile(r"^v(\d{1,4})$")


class InvalidToken(ValueError):
    pass


def _key(settings: Settings, purpose: str, version: int) -> bytes:
    return _derive(settings.secret_key, purpose, version)


@lru_cache(maxsize=64)
def _derive(secret_key: str, purpose: str, version: int) -> bytes:
    # Every token verified derives its key: an HMAC per call saved on each request.
    return hmac.new(secret_key.encode(), f"{purpose}:v{version}".encode(), hashlib.sha256).digest()


def version_accepted(
    current: int, grace_until: datetime | None, version: int, now: float | None = None
) -> bool:
    """The current version always; an older one only before its grace end; a newer one never
    (it was signed by a deployment this one does not know of yet, or forged)."""
    if version == current:
        return True
    if not 1 <= version < current or grace_until is None:
        return False
    return (time.time() if now is None else now) < grace_until.timestamp()


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
    if not version_accepted(
        settings.station_key_version, settings.station_key_grace_until, version
    ):
        raise InvalidToken("station key version retired")
    if not hmac.compare_digest(sig, _station_sig(settings, version, station_id)):
        raise InvalidToken("station token signature does not match")
    return station_id


@dataclass(frozen=True)
class Principal:
    role: Role
    # member id, community id (organizer), unit id (hr), "admin", "county", town id (town)
    subject_id: str
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
    v = settings.bearer_key_version
    return jwt.encode(
        claims, _key(settings, "bearer", v), algorithm="HS256", headers={"kid": f"v{v}"}
    )


# Tokens already verified, so a member's next scan skips the JWT decode (~35 µs of the ~0.75 ms
# a check-in costs the API; bench/findings.md, section 2). Only valid tokens are kept, keyed
# with the secret they were checked against; expiry is re-checked on every hit and revocation
# is checked by the caller on every request, and the key version's grace too, so a hit decides
# nothing a decode would not.
_VERIFIED: dict[tuple[str, str], tuple[Principal, int]] = {}
_VERIFIED_MAX = 100_000


def verify_bearer(settings: Settings, token: str) -> Principal:
    if hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        return Principal("admin", "admin", "admin-token", None)
    key = (settings.secret_key, token)
    hit = _VERIFIED.get(key)
    if hit is not None:
        known, version = hit
        if known.expires_at is not None and known.expires_at <= time.time():
            _VERIFIED.pop(key, None)  # (threads of sync routes verify too)
            raise InvalidToken("token expired")
        _check_bearer_version(settings, version)
        return known
    principal, version = _decode_bearer(settings, token)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[key] = (principal, version)
    return principal


def _check_bearer_version(settings: Settings, version: int) -> None:
    if not version_accepted(settings.bearer_key_version, settings.bearer_key_grace_until, version):
        raise InvalidToken("token signed with a retired key version")


def _bearer_version(token: str) -> int:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid token") from exc
    if kid is None:
        return 1  # issued before tokens named their key version
    m = _KID.match(kid) if isinstance(kid, str) else None
    if m is None:
        raise InvalidToken("invalid token key version")
    return int(m.group(1))


def _decode_bearer(settings: Settings, token: str) -> tuple[Principal, int]:
    version = _bearer_version(token)
    # Before the signature: a retired or unknown version derives no key at all.
    _check_bearer_version(settings, version)
    try:
        claims = jwt.decode(
            token,
            _key(settings, "bearer", version),
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
    return Principal(role, str(claims["sub"]), str(claims["jti"]), int(claims["exp"])), version
