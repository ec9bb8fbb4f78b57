"""The sessions a record of service (服务证明) certifies, and the records issued.

A record certifies the member's sessions that began between two local days (the same sessions
and hours the year's hours and the assessment count, by the same rules): never a voided
revision, an open or rejected session, or an anomaly no organizer adjusted. A session credited
below the weekly minimum and not approved is a line with its hours but is not counted among the
services (`counted` false), as the year's hours and sessions have it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.counting import COUNTED_SQL, RECORDED_SQL, SECONDS_SQL, hours
from services.reads._rows import utc
from services.timeutil import local_midnight
from services.warehouse.client import Warehouse


@dataclass(frozen=True)
class CertifiedSession:
    session_id: str
    station_name: str
    start: datetime
    end: datetime | None
    seconds: int
    status: str
    counted: bool = True

    @property
    def hours(self) -> float:
        return hours(self.seconds)


def certified_sessions(
    wh: Warehouse, member_id: str, first_day: date, last_day: date
) -> list[CertifiedSession]:
    """The member's recorded sessions that began on local days `first_day`..`last_day`."""
    rows = wh.query(
        f"""
        SELECT s.session_id, ifNull(st.name, s.station_id), s.start, s.end, s.secs, s.status,
               s.counted
        FROM (SELECT session_id, station_id, start, end, {SECONDS_SQL} AS secs, status,
                     {COUNTED_SQL} AS counted
              FROM sessions FINAL
              WHERE member_id = %(m)s AND start >= %(a)s AND start < %(b)s
                AND {RECORDED_SQL}) AS s
        LEFT JOIN (SELECT id, name FROM stations FINAL) AS st ON st.id = s.station_id
        ORDER BY s.start, s.session_id
        """,
        {
            "m": member_id,
            "a": local_midnight(first_day),
            "b": local_midnight(last_day + timedelta(days=1)),
        },
    )
    return [
        CertifiedSession(
            str(sid), str(name), utc(st) or st, utc(en), int(sec), str(status), bool(counted)
        )
        for sid, name, st, en, sec, status, counted in rows
    ]


def total_hours(sessions: list[CertifiedSession]) -> float:
    """The record's hours: the one rounding, applied once to the total."""
    return hours(sum(s.seconds for s in sessions))


def issued_payload(wh: Warehouse, code: str) -> str | None:
    """The issued record's JSON, by its normalized code."""
    rows = wh.query(
        "SELECT payload FROM service_records FINAL WHERE code = %(c)s LIMIT 1", {"c": code}
    )
    return str(rows[0][0]) if rows else None


@dataclass(frozen=True)
class NationalRow:
    """One service as the national volunteer information system's bulk import takes it."""

    member_id: str
    member_name: str
    phone: str | None
    # The national volunteer number, when the member or their unit's HR entered one.
    volunteer_no: str | None
    station_name: str
    start: datetime
    end: datetime | None
    seconds: int

    @property
    def hours(self) -> float:
        return hours(self.seconds)


def community_services(
    wh: Warehouse, community_id: str, first_day: date, last_day: date
) -> list[NationalRow]:
    """The services done at the community's stations (the organization that organized and
    records them) that began on local days `first_day`..`last_day`, each with its actual
    credited time: the sessions a record of service lists (`RECORDED_SQL`), by start."""
    rows = wh.query(
        f"""
        SELECT s.member_id, ifNull(m.name, s.member_id), m.phone, m.volunteer_no,
               ifNull(st.name, s.station_id), s.start, s.end, s.secs
        FROM (SELECT member_id, station_id, start, end, {SECONDS_SQL} AS secs, session_id
              FROM sessions FINAL
              WHERE station_community_id = %(c)s AND start >= %(a)s AND start < %(b)s
                AND {RECORDED_SQL}) AS s
        LEFT JOIN (SELECT id, name, phone, volunteer_no FROM members FINAL) AS m
            ON m.id = s.member_id
        LEFT JOIN (SELECT id, name FROM stations FINAL) AS st ON st.id = s.station_id
        ORDER BY s.start, s.session_id
        SETTINGS join_use_nulls = 1
        """,
        {
            "c": community_id,
            "a": local_midnight(first_day),
            "b": local_midnight(last_day + timedelta(days=1)),
        },
    )
    return [
        NationalRow(str(mid), str(name), phone, vno, str(st), utc(a) or a, utc(b), int(secs))
        for mid, name, phone, vno, st, a, b, secs in rows
    ]
