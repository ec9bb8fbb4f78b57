"""Fault drills (`make drills`, issue 7): each starts its own real stack, drives a run of
check-ins with known ids and known true hours, injects one fault, and reconciles ClickHouse
against the truth (lost and double-counted hours, both expected 0, and the time to catch up)."""
