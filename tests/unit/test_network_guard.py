"""The network guard fails an unmarked test that tried to reach a service, even when the code
under test caught the refusal; marked tests and tests that stay local are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GUARD = ("-p", "tests.support.network_guard")


def test_an_unmarked_test_that_swallows_the_refusal_still_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def best_effort_ping():
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=0.1).close()
            except Exception:
                return False
            return True

        def test_swallows():
            assert best_effort_ping() is False
        """
    )
    result = pytester.runpytest(*GUARD)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not marked kafka/clickhouse but tried to reach a service 1*"])
    result.stdout.fnmatch_lines(["*socket.create_connection(('127.0.0.1', 9))*"])


def test_swallowed_attempts_through_socket_methods_and_clickhouse_fail(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import socket
        import clickhouse_connect

        def test_connect_ex_returns_no_error_to_check():
            with socket.socket() as s:
                try:
                    s.connect_ex(("127.0.0.1", 9))
                except Exception:
                    pass

        def test_warehouse_probe():
            try:
                clickhouse_connect.get_client(dsn="chdb:///tmp/x")
            except Exception:
                pass

        def test_async_connect():
            import asyncio
            import threading

            async def probe():
                try:
                    await asyncio.open_connection("127.0.0.1", 9)
                except Exception:
                    return None

            # A loop of its own: the suite may run with a loop already in this thread.
            t = threading.Thread(target=asyncio.run, args=(probe(),))
            t.start()
            t.join()
        """
    )
    result = pytester.runpytest(*GUARD)
    result.assert_outcomes(failed=3)
    # Each failed for trying, not for something else.
    result.stdout.fnmatch_lines(
        [
            "*test_connect_ex_returns_no_error_to_check* tried to reach a service 1*",
            "*socket.connect_ex(('127.0.0.1', 9))*",
        ]
    )
    result.stdout.fnmatch_lines(["*test_warehouse_probe* tried to reach a service 1*"])
    result.stdout.fnmatch_lines(["*clickhouse_connect.get_client({'dsn': 'chdb:///tmp/x'})*"])
    result.stdout.fnmatch_lines(["*test_async_connect* tried to reach a service 1*"])
    result.stdout.fnmatch_lines(["*socket.connect(('127.0.0.1', 9))*"])


def test_an_attempt_in_a_fixture_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket
        import pytest

        @pytest.fixture
        def client():
            yield
            try:
                socket.create_connection(("127.0.0.1", 9))
            except Exception:
                pass

        def test_uses_client(client):
            pass
        """
    )
    result = pytester.runpytest(*GUARD)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_uses_client* tried to reach a service 1*"])


def test_local_work_and_marked_tests_pass(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a process of its own: in this one, this (unmarked) test's own guard is in force.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeini("[pytest]\nmarkers =\n    kafka: k\n    clickhouse: c\n")
    pytester.makepyfile(
        """
        import socket
        import pytest

        def test_binding_a_port_is_local():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                assert s.getsockname()[1] > 0

        @pytest.mark.kafka
        def test_marked_is_not_guarded():
            assert socket.socket.connect.__qualname__ == "socket.connect"
        """
    )
    result = pytester.runpytest_subprocess(*GUARD)
    result.assert_outcomes(passed=2)
