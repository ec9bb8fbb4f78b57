"""Stations' presence policy (issue 17): whether the printed poster is accepted, what happens to
a back-dated poster scan, and the generation of the station's screen keys (revocation).

Columns with the records' defaults, so rows written before read as the stations were: posters
accepted, back-dated poster scans flagged, screen keys of generation 0.
"""

STATEMENTS = [
    "ALTER TABLE stations ADD COLUMN IF NOT EXISTS accepts_poster Bool DEFAULT true",
    "ALTER TABLE stations ADD COLUMN IF NOT EXISTS"
    " backdated_poster LowCardinality(String) DEFAULT 'flag'",
    "ALTER TABLE stations ADD COLUMN IF NOT EXISTS screen_key_generation UInt32 DEFAULT 0",
]
