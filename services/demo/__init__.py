"""The demo county (a seeded, pure generator), its loader through the public API, and the week
simulator that drives members' scans through the API (`python -m services.demo.simulate`)."""
