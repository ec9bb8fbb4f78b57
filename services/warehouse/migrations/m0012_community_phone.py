"""`communities.phone`: the number a member is told to call (no activation code, a changed
status). Nullable, so rows written before keep no number."""

STATEMENTS = [
    "ALTER TABLE communities ADD COLUMN IF NOT EXISTS phone Nullable(String) AFTER name",
]
