"""Numbered schema migrations. Never edit one that has landed: add the next number.

Each module `mNNNN_name.py` holds `STATEMENTS`, applied in order and then recorded in
`schema_migrations`. Every statement is idempotent (IF NOT EXISTS), so a migration interrupted
half-way is simply applied again.
"""
