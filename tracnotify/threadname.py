"""Name the calling thread for the operating system.

Python 3.11 keeps ``Thread.name`` to itself: ``ps -L``, ``top -H`` and
``/proc/PID/task/*/comm`` show every thread as ``python``.  Our threads set
their native name too, so that an administrator (and a test) can count them
in a running ``tracd``.
"""

import ctypes
import ctypes.util
import sys
from typing import Callable

PR_SET_NAME = 15     # linux/prctl.h
MAX_NAME = 15        # the kernel keeps 15 bytes and a NUL


def set_native_name(name: str) -> bool:
    """Give the calling thread *name* (at most 15 bytes) in the kernel's
    view; returns whether it worked (Linux only, a no-op elsewhere)."""
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or None,
                           use_errno=True)
        encoded = name.encode('ascii', 'replace')[:MAX_NAME]
        return libc.prctl(PR_SET_NAME, ctypes.c_char_p(encoded), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def native_name(name: str, target: Callable[..., None]
                ) -> Callable[..., None]:
    """*target*, naming its thread *name* first.  A Linux thread starts
    with the native name of the thread that created it: helpers started by
    the delivery thread would otherwise be counted as delivery threads."""
    def run(*args, **kwargs) -> None:
        set_native_name(name)
        target(*args, **kwargs)
    return run
