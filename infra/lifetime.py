"""Children that do not outlive the process that started them (Linux).

Every child of the stack (broker, worker, API) runs in a session of its own, so a Ctrl-C in the
terminal reaches only the parent, which stops them in order. A parent that dies without its
cleanup (SIGKILL, an out-of-memory kill, a test run killed by a timeout) used to leave them
running for hours: the kernel now sends each SIGTERM when its parent dies (PR_SET_PDEATHSIG),
and a worker or a broker told to stop exits within 30 s, whatever else has gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen` that has the child receive SIGTERM when this process
    dies; None where that is not available, or when called off the main thread: the kernel
    signals when the *thread* that started the child ends, and a helper thread may end long
    before the process does."""
    if _libc is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    prctl = _libc.prctl

    def preexec() -> None:
        # In the child, between fork and exec: nothing that allocates or takes a lock.
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the call above took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
