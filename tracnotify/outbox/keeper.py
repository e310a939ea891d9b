"""Keeps a claim's lease alive while its owner works on it.

A send to a slow SMTP server, or the expansion of many changes, may take
longer than ``outbox_lease_seconds``.  :class:`LeaseKeeper` renews the lease
of the claim being worked on from a thread of its own (a quarter of the
lease after each renewal), so that no other worker sees it expire while
this one is still busy with it.  The thread belongs to the ``with`` block
that starts it: leaving the block stops and joins it.
"""

import threading
from typing import Optional

from trac.util.text import exception_to_unicode

from tracnotify.outbox import Claim
from tracnotify.threadname import native_name, start_named


class LeaseKeeper:
    """``with LeaseKeeper(env) as keeper: keeper.claim = claim; ...``.

    With *threaded* false (one in-memory SQLite connection cannot be shared
    between threads) there is no thread: the owner calls
    ``claim.keep(env)`` between its steps.
    """

    def __init__(self, env, threaded: bool = True) -> None:
        self.env = env
        self.threaded = threaded
        self.claim: Optional[Claim] = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def watch(self, claim: Optional[Claim]) -> None:
        """Renew *claim* from now on (None: nothing to renew)."""
        self.claim = claim
        self._wake.set()

    def __enter__(self) -> 'LeaseKeeper':
        if self.threaded:
            self._thread = threading.Thread(target=native_name('tracnotify-keep',
                                                       self._run),
                                            name='tracnotify-lease-keeper',
                                            daemon=True)
            start_named(self._thread, 'tracnotify-keep')
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        pause = 0.0
        while not self._stop.is_set():
            claim = self.claim
            wait = None if claim is None else max(claim.wait_time(), pause)
            self._wake.wait(wait)
            self._wake.clear()
            claim = self.claim
            pause = 0.05
            if claim is None or self._stop.is_set() or not claim.due():
                continue
            try:
                claim.keep(self.env)
            except Exception as e:
                # the database is away: the owner will notice it too
                pause = 0.5
                self.env.log.warning('tracnotify: cannot renew a lease: %s',
                                     exception_to_unicode(e))
