"""Shared test support as plain modules: test modules import helpers from here, never from a
conftest.py (conftest files hold fixtures and hooks only).

- `net`: free ports.
- `network_guard`: the pytest plugin that fails an unmarked test which tried to reach the
  network, even when the code under test caught the refusal.
- `stack`: the real stack of the integration tests (worker process, `Stack` handle with
  `settled()`, scans through the API or straight onto the log).
- `demo`: the demo simulator on that stack (history-mode settings, the simulator's client).
- `weeks`: last week's moments and the STACK_ENVs of tests dated in the past.
- `access_log`: the access log's recording publisher (unit) and the admin's reads of it.
- `sms`: a local HTTP server standing in for the SMS provider.
- `slots`: slots that already ran, published to the log as they were then.
- `live`: the browser tests' API served by uvicorn, their marks and helpers.
"""
