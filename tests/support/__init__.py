"""Shared test support as plain modules: test modules import helpers from here, never from a
conftest.py (conftest files hold fixtures and hooks only).

- `net`: free ports.
- `network_guard`: the pytest plugin that fails an unmarked test which tried to reach the
  network, even when the code under test caught the refusal.
- `stack`: the real stack of the integration tests (worker process, `Stack` handle).
- `live`: the browser tests' API served by uvicorn, their marks and helpers.
"""
