"""Name the calling thread for the operating system.

Python 3.11 keeps ``Thread.name`` to itself: ``ps -L``, ``top -H`` and
``/proc/PID/task/*/comm`` show every thread as ``python``.  Our threads set
their native name too, so that an administrator (and a test) can count them
in a running ``tracd``.
"""

import ctypes
import ctypes.util
import functools
import sys
import threading
from typing import Callable, Optional

PR_SET_NAME = 15     # linux/prctl.h
PR_GET_NAME = 16
MAX_NAME = 15        # the kernel keeps 15 bytes and a NUL


@functools.lru_cache(maxsize=None)
def _prctl() -> Optional[Callable[..., int]]:
    """libc's ``prctl``, looked up once per process (None where there is
    none).  ``ctypes.util.find_library`` runs ``ldconfig -p`` in a
    subprocess: tens of milliseconds, so it must not run at every thread
    start (a new thread shows its creator's name until it has renamed
    itself)."""
    for find in (lambda: None, lambda: ctypes.util.find_library('c')):
        try:   # the process's own symbols first: libc is among them
            return ctypes.CDLL(find(), use_errno=True).prctl
        except (OSError, AttributeError):
            continue
    return None


def set_native_name(name: str) -> bool:
    """Give the calling thread *name* (at most 15 bytes) in the kernel's
    view; returns whether it worked (Linux only, a no-op elsewhere)."""
    if not sys.platform.startswith('linux'):
        return False
    prctl = _prctl()
    if prctl is None:
        return False
    encoded = name.encode('ascii', 'replace')[:MAX_NAME]
    return prctl(PR_SET_NAME, ctypes.c_char_p(encoded), 0, 0, 0) == 0


def get_native_name() -> Optional[str]:
    """The calling thread's name in the kernel's view (None elsewhere)."""
    if not sys.platform.startswith('linux'):
        return None
    prctl = _prctl()
    if prctl is None:
        return None
    buffer = ctypes.create_string_buffer(MAX_NAME + 1)
    if prctl(PR_GET_NAME, buffer, 0, 0, 0) != 0:
        return None
    return buffer.value.decode('ascii', 'replace')


def start_named(thread: threading.Thread, name: str) -> None:
    """Start *thread* born with the native name *name*: the calling thread
    carries it while the new one is created (Linux copies it), so that not
    even in the instant before it first runs is the new thread counted as
    one of its creator's kind (a delivery thread).  Give *thread* a target
    wrapped by :func:`native_name` too, for other systems."""
    own = get_native_name()
    set_native_name(name)
    try:
        thread.start()
    finally:
        if own:
            set_native_name(own)


def native_name(name: str, target: Callable[..., None]
                ) -> Callable[..., None]:
    """*target*, naming its thread *name* first.  A Linux thread starts
    with the native name of the thread that created it: helpers started by
    the delivery thread would otherwise be counted as delivery threads."""
    def run(*args, **kwargs) -> None:
        set_native_name(name)
        target(*args, **kwargs)
    return run
