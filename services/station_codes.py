"""Rotating station codes for screens, the screens' own keys, and phone activation codes.

Rotating code: `w{version}.{station_id}.{window}.{signature}` where `window` is the number of
`station_code_window_s` periods since the epoch. The tablet at the station shows the code of
the current window. A scan carrying it counts only if the time it claims (`scanned_at`, or the
receipt when the phone sent it at once) falls in that window, from one window before (clocks
differ) to `grace` seconds after it ended: a scan queued offline then proves the screen was seen
at the time it claims, and a photo of the screen sent to someone at home is useless a minute
later, since claiming an earlier time needs the code of that earlier time. A code from more than
one window ahead of the server's clock is refused as forged. The printed poster token
(`services.tokens.sign_station`) proves nothing about time: a station may refuse it
(`Station.accepts_poster`), and a back-dated poster scan is flagged or refused
(`services.sessions.backdated_poster`).

Screen key: a JWT (own signing key) naming one station and the generation of the station's
screen keys it was issued under; the organizer gives it to the tablet once, as a link. It only
lets its holder fetch that station's current code, and only while the station's generation is
still the key's: revoking a station's screen keys bumps the generation (a registry change, so
every API process sees it within `REGISTRY_REFRESH_S`), checked on every request.

Activation code: 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), easy to read
aloud over the phone; about 8.5e11 combinations, and redemption is rate-limited. Only an HMAC of
the code is stored, so a reader of the warehouse or the log cannot redeem anyone's code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from services.events import ScanProof
from services.settings import Settings
from services.tokens import InvalidToken, _b64, _key, verify_station, version_accepted

_WINDOWED = re.compile(r"^w(\d{1,4})\.([A-Za-z0-9_-]{1,64})\.(\d{1,12})\.([A-Za-z0-9_-]{22})$")


class StationCodeExpired(InvalidToken):
    """A genuine rotating code whose window and grace had passed at the time the scan claims."""


class ScanBeforeCodeWindow(InvalidToken):
    """A genuine rotating code, but the scan claims a time before the code was shown."""


@dataclass(frozen=True, slots=True)
class VerifiedScan:
    station_id: str
    proof: ScanProof  # "poster" or "screen"


def current_window(settings: Settings, now: float | None = None) -> int:
    t = time.time() if now is None else now
    return int(t // settings.station_code_window_s)


def _window_sig(settings: Settings, version: int, station_id: str, window: int) -> str:
    mac = hmac.new(
        _key(settings, "station-window", version),
        f"w{version}.{station_id}.{window}".encode(),
        hashlib.sha256,
    )
    return _b64(mac.digest()[:16])


def sign_window(settings: Settings, station_id: str, window: int) -> str:
    v = settings.station_key_version
    return f"w{v}.{station_id}.{window}.{_window_sig(settings, v, station_id, window)}"


def window_valid_until(settings: Settings, window: int) -> float:
    """The last instant (epoch seconds) at which the code of `window` is accepted."""
    return float((window + 1) * settings.station_code_window_s + settings.station_code_grace_s)


def window_shown_from(settings: Settings, window: int) -> float:
    """The earliest claimed time (epoch seconds) a scan of the code of `window` may carry: one
    window before it began, the same tolerance for clocks that differ as for codes ahead."""
    return float((window - 1) * settings.station_code_window_s)


def verify_window(
    settings: Settings, token: str, now: float | None = None, scanned_at: float | None = None
) -> str:
    """Returns the station id of a rotating code; raises InvalidToken, StationCodeExpired (the
    claimed time, `scanned_at` or else `now`, is after the code's window and grace) or
    ScanBeforeCodeWindow (it is before the code was shown)."""
    m = _WINDOWED.match(token)
    if not m:
        raise InvalidToken("malformed station token")
    version, station_id, window, sig = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
    if version > settings.station_key_version or version < 1:
        raise InvalidToken("unknown station key version")
    # Wall time, not `now` (which may be a scan's claimed time): a retired key stays retired.
    if not version_accepted(
        settings.station_key_version, settings.station_key_grace_until, version
    ):
        raise InvalidToken("station key version retired")
    if not hmac.compare_digest(sig, _window_sig(settings, version, station_id, window)):
        raise InvalidToken("station token signature does not match")
    t = time.time() if now is None else now
    # One window ahead is tolerated: server clocks in a cluster may differ by a little.
    if window > current_window(settings, t) + 1:
        raise InvalidToken("station code is from the future")
    claimed = t if scanned_at is None else scanned_at
    if claimed > window_valid_until(settings, window):
        raise StationCodeExpired("station code has expired; scan the code on the screen again")
    if claimed < window_shown_from(settings, window):
        raise ScanBeforeCodeWindow("scanned_at lies before this station code was shown")
    return station_id


def verify_scan_token(settings: Settings, token: str, now: float | None = None) -> str:
    """Either form a phone may send: a rotating screen code (`w...`) or a poster token (`v...`)."""
    if token.startswith("w"):
        return verify_window(settings, token, now)
    return verify_station(settings, token)


def verify_scan(
    settings: Settings, token: str, scanned_at: float | None, now: float | None = None
) -> VerifiedScan:
    """A check-in's token, with what it proves: a rotating code checked against the time the
    scan claims (`scanned_at`, None: now), or a poster token (no time at all)."""
    if token.startswith("w"):
        return VerifiedScan(verify_window(settings, token, now, scanned_at), "screen")
    return VerifiedScan(verify_station(settings, token), "poster")


# ---- screen keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenKey:
    station_id: str
    expires_at: int
    # The generation of the station's screen keys it was issued under (0: before revocation
    # existed); valid only while the station's `screen_key_generation` is the same.
    generation: int = 0

    def revoked_by(self, station_generation: int) -> bool:
        return self.generation != station_generation


def issue_screen_key(settings: Settings, station_id: str, generation: int = 0) -> tuple[str, int]:
    now = int(time.time())
    exp = now + settings.screen_key_ttl_s
    claims = {
        "sub": station_id,
        "gen": generation,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": exp,
    }
    return jwt.encode(claims, _key(settings, "screen", 1), algorithm="HS256"), exp


def verify_screen_key(settings: Settings, key: str) -> ScreenKey:
    try:
        claims = jwt.decode(
            key,
            _key(settings, "screen", 1),
            algorithms=["HS256"],
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("screen key expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("invalid screen key") from exc
    gen = claims.get("gen", 0)
    if not isinstance(gen, int) or isinstance(gen, bool):
        raise InvalidToken("invalid screen key")
    return ScreenKey(str(claims["sub"]), int(claims["exp"]), gen)


# ---- activation codes ----------------------------------------------------------------------

ACTIVATION_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
ACTIVATION_LENGTH = 8


def new_activation_code() -> str:
    return "".join(secrets.choice(ACTIVATION_ALPHABET) for _ in range(ACTIVATION_LENGTH))


def normalize_activation_code(raw: str) -> str | None:
    """What a person typed, read aloud or copied (any case, spaces, a dash) to the stored form;
    None when it cannot be a code, so the caller refuses it without a lookup."""
    code = re.sub(r"[\s-]", "", raw).upper()
    if len(code) != ACTIVATION_LENGTH or any(c not in ACTIVATION_ALPHABET for c in code):
        return None
    return code


def format_activation_code(code: str) -> str:
    """`ABCD-EFGH`: two groups of four are easier to read aloud and to type."""
    return f"{code[:4]}-{code[4:]}"


def activation_code_hash(settings: Settings, code: str) -> str:
    return hmac.new(_key(settings, "activation", 1), code.encode(), hashlib.sha256).hexdigest()
