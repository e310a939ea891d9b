"""The background delivery thread of a Trac process (``delivery = inline``).

Thin Trac glue: :class:`DeliveryService` owns the thread, which runs
:class:`tracnotify.delivery.deliverer.Deliverer` passes.
"""

import atexit
import threading
from typing import Optional

from trac.core import Component, implements
from trac.util.text import exception_to_unicode
from trac.web.api import IRequestFilter

from tracnotify.config import load_config
from tracnotify.delivery.deliverer import Deliverer, PassReport


class DeliveryService(Component):
    """The background delivery thread of a Trac process.

    Web processes start it with their first request (so that changes made
    by ``trac-admin`` or scripts, and retries, are delivered by the web
    server); other processes start it when they record a change.
    """

    implements(IRequestFilter)

    def __init__(self):
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._recorded_here = False     # a change was recorded by this process
        self._config_errors_logged = False

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        if self._thread is None or not self._thread.is_alive():
            try:
                if load_config(self.env).delivery == 'inline':
                    self._ensure_thread()
            except Exception as e:
                self.log.error('tracnotify: cannot start delivery: %s',
                               exception_to_unicode(e))
        return handler

    def post_process_request(self, req, template, data, metadata):
        return template, data, metadata

    # Public API

    def wake(self) -> None:
        """Ask for a delivery pass soon (called after each recorded change)."""
        config = load_config(self.env)
        if config.delivery != 'inline':
            return
        self._recorded_here = True
        self._ensure_thread()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current pass."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        from trac.db.api import DatabaseManager
        if DatabaseManager(self.env).connection_uri.endswith(':memory:'):
            return  # one in-memory SQLite connection cannot be shared
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name='tracnotify-delivery', daemon=True)
            self._thread.start()
            atexit.register(self.stop)

    def _run(self) -> None:
        idle = 0
        while not self._stop.is_set():
            woken = self._wake.wait(self._poll_interval(idle))
            self._wake.clear()
            if self._stop.is_set():
                break
            report = self._pass()
            # a change recorded in a still-open transaction becomes visible
            # only after its commit: look again shortly after a wake-up.
            idle = 0 if (woken or report.attempted or report.events) \
                else idle + 1
        if self._recorded_here:
            # A process that is exiting (trac-admin, a script) may have
            # committed its change after our last look: one more pass, so
            # that its mail goes out now rather than at the next poll of
            # some other process.  stop() bounds how long it may take.
            self._pass(threading.Event())

    def _poll_interval(self, idle: int) -> float:
        configured = load_config(self.env).poll_interval
        return 0.2 if idle < 3 else float(configured)

    def _pass(self, stop: Optional[threading.Event] = None) -> PassReport:
        try:
            config = load_config(self.env)
            if config.errors and not self._config_errors_logged:
                for error in config.errors:
                    self.log.warning('tracnotify: %s', error)
                self._config_errors_logged = True
            return Deliverer(self.env, config).run_once(stop=stop or self._stop)
        except Exception as e:
            self.log.error('tracnotify: delivery pass failed: %s',
                           exception_to_unicode(e, traceback=True))
            return PassReport()
