import threading

from services import periodic


def test_a_failed_run_is_logged_and_the_next_run_comes() -> None:
    runs: list[int] = []
    stop = threading.Event()

    def body() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("the warehouse is away")
        if len(runs) == 3:
            stop.set()

    t = periodic.every("test-job", 0.01, stop, body)
    assert t.daemon and t.name == "test-job"
    t.start()
    t.join(timeout=5)
    assert not t.is_alive()
    assert runs == [0, 1, 2]


def test_nothing_runs_once_stop_is_set() -> None:
    stop = threading.Event()
    stop.set()
    runs: list[int] = []
    t = periodic.every("test-job", 0.01, stop, lambda: runs.append(1))
    t.start()
    t.join(timeout=5)
    assert runs == []
