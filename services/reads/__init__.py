"""The read layer: every warehouse query the API answers with, named for what it answers.

Routers validate, authorize, call one of these and shape the answer; benchmarks and tools call
the same functions. The counting rules they apply (what counts, credited seconds, hours, the
year, "registered", whose service) are defined once in `services.counting`.

- `member_hours`: a member's year hours, breakdown, sessions list, this week, one ISO week.
- `weeks`: a community's, grid's, unit's and station's week, the county week, the breakdown.
- `records`: the sessions a record of service certifies; issued records.
- `assessment`: one unit's annual assessment (a page, or the whole unit for exports).
- `sessions`: the review queue, one session for a review or as evidence, the audit trail.
- `registry`: small registry lookups the pages and exports need (names, stations, on site).
- `engagement`: feedback, the three lists and campaigns (`services.engagement`).
"""
