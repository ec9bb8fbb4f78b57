"""A station's tablet, as the live-code route and the screen page both check it."""

from __future__ import annotations

from api.context import AppContext
from services.events import Station
from services.station_codes import verify_screen_key
from services.tokens import InvalidToken


class ScreenKeyForAnotherStation(InvalidToken):
    """A genuine screen key, of another station."""


def screen_station(ctx: AppContext, key: str, station_id: str) -> Station:
    """The station a screen key opens, checked on every request: signed, not expired, for this
    station and not revoked (issued under the station's current screen-key generation). Raises
    InvalidToken (ScreenKeyForAnotherStation), or NotFound for a station that does not exist."""
    screen = verify_screen_key(ctx.settings, key)
    if screen.station_id != station_id:
        raise ScreenKeyForAnotherStation("screen key is for another station")
    station = ctx.registry.station(station_id)
    if screen.revoked_by(screen_key_generation(ctx, station)):
        raise InvalidToken("screen key revoked")
    return station


def screen_key_generation(ctx: AppContext, station: Station) -> int:
    """The station's current screen-key generation. Generations only grow, so the higher of the
    replica's copy (refreshed every REGISTRY_REFRESH_S with every process's changes) and the
    cached record (this process's changes at once) is the current one."""
    ref = ctx.registry.replica.station(station.id)
    return max(station.screen_key_generation, ref.screen_key_generation if ref else 0)
