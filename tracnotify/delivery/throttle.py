"""Burst control for relays that throttle: N messages, then a pause."""

import threading
from typing import Optional


class Throttle:
    """Shared by every sending thread of a pass: at most *burst* messages,
    then *pause* seconds, then the next burst.  ``burst = 0`` is no limit."""

    def __init__(self, burst: int, pause: float,
                 stop: Optional[threading.Event] = None) -> None:
        self.burst = burst
        self.pause = pause
        self.stop = stop or threading.Event()
        self._left = burst
        self._lock = threading.Lock()
        self.pauses = 0

    def take(self, wanted: int) -> int:
        """How many of *wanted* messages may go now (waits for the pause
        when the burst is spent; returns 0 when asked to stop)."""
        if self.burst <= 0:
            return wanted
        with self._lock:
            if self._left <= 0:
                self.pauses += 1
                if self.stop.wait(self.pause):
                    return 0
                self._left = self.burst
            granted = min(wanted, self._left)
            self._left -= granted
            return granted

    def give_back(self, unused: int) -> None:
        """Messages granted by :meth:`take` that were not sent (fewer
        were due): they count for the burst again."""
        if self.burst > 0 and unused > 0:
            with self._lock:
                self._left = min(self.burst, self._left + unused)
