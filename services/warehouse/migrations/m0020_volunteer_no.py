"""The national volunteer number (志愿者编号) on members (issue 15): issued by the national
volunteer service information system, set by the member or their unit's HR, printed masked on
records of service and in full in the national export. Nullable: members entered before have
none, and the export leaves the column blank for them. No citizen ID number is ever stored."""

STATEMENTS = [
    "ALTER TABLE members ADD COLUMN IF NOT EXISTS volunteer_no Nullable(String)",
]
