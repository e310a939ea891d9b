"""The standalone delivery worker: ``trac-admin ENV notify worker``.

A long-lived loop for sites that set ``delivery = worker`` and run it under
systemd (``contrib/tracnotify-worker.service``).  SIGTERM / SIGINT stop it
cleanly: the batch in flight is finished, nothing new is claimed.  Any
number of workers may run at once, on one machine or several, against one
PostgreSQL database: claims are leased, so no message is sent twice.

Database connections are dropped after an error and every
``REFRESH_SECONDS``, so a server that closes idle connections (or restarts)
does not make the worker fail.
"""

import signal
import sys
import threading
import time
from typing import Optional

from trac.admin.api import AdminCommandError, IAdminCommandProvider
from trac.core import Component, implements
from trac.db.api import DatabaseManager
from trac.util.text import exception_to_unicode

from tracnotify.config import load_config
from tracnotify.delivery.deliverer import Deliverer, PassReport
from tracnotify.i18n.domain import _
from tracnotify.inbound.fetch import PeriodicFetch

REFRESH_SECONDS = 600
ERROR_BACKOFF = (1, 2, 5, 10, 30, 60)


class Worker:
    """Delivers the outbox of *env* until asked to stop."""

    def __init__(self, env, stop: Optional[threading.Event] = None) -> None:
        self.env = env
        self.stop = stop or threading.Event()
        self.log = env.log
        self.passes = 0
        self.sent = 0
        self._errors_in_row = 0
        self._last_refresh = time.monotonic()
        self.fetcher = PeriodicFetch(env)     # imap_fetch_interval

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask the loop to stop after the current batch."""
        def handler(signum, frame):
            self.log.info('tracnotify worker: signal %d, stopping', signum)
            self.stop.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, once: bool = False) -> None:
        """Loop: one pass, then wait for the poll interval if idle."""
        while not self.stop.is_set():
            report = self.run_pass()
            if once:
                return
            if report is None:
                delay = ERROR_BACKOFF[min(self._errors_in_row,
                                          len(ERROR_BACKOFF)) - 1]
                self.stop.wait(delay)
            elif not report.attempted and not report.events:
                self.stop.wait(load_config(self.env).poll_interval)

    def run_pass(self) -> Optional[PassReport]:
        """One pass, with trac.ini as it is now; None when it failed (the
        error is logged)."""
        self._refresh_connections_if_old()
        self._reread_config()
        try:
            config = load_config(self.env)
            report = Deliverer(self.env, config).run_once(stop=self.stop)
        except Exception as e:
            self._errors_in_row += 1
            self.log.error('tracnotify worker: pass failed (%s); database '
                           'connections are reopened',
                           exception_to_unicode(e, traceback=True))
            self._drop_connections()
            return None
        self._errors_in_row = 0
        self.passes += 1
        self.sent += report.sent
        self.fetcher.run_if_due()
        return report

    def _reread_config(self) -> None:
        """Read trac.ini again if it changed (the worker's environment is
        its own: no web server reloads it)."""
        try:
            if self.env.config.parse_if_needed():
                self.log.info('tracnotify worker: trac.ini changed: read '
                              'again')
        except Exception as e:   # a half-written file: keep the old values
            self.log.warning('tracnotify worker: cannot read trac.ini: %s',
                             exception_to_unicode(e))

    def _refresh_connections_if_old(self) -> None:
        if time.monotonic() - self._last_refresh > REFRESH_SECONDS:
            self._drop_connections()

    def _drop_connections(self) -> None:
        self._last_refresh = time.monotonic()
        try:
            DatabaseManager(self.env).shutdown()
        except Exception as e:
            self.log.warning('tracnotify worker: closing connections: %s',
                             exception_to_unicode(e))


class WorkerCommand(Component):
    """``trac-admin ENV notify worker [--once]``."""

    implements(IAdminCommandProvider)

    def get_admin_commands(self):
        yield ('notify worker', '[--once]',
               """Deliver the outbox in a long-lived loop

               For `delivery = worker`; stops cleanly on SIGTERM/SIGINT.
               With --once, one pass and exit.""",
               None, self._do_worker)

    def _do_worker(self, *args):
        if args not in ((), ('--once',)):
            raise AdminCommandError(
                _('Unknown arguments: %(args)s', args=' '.join(args)),
                show_usage=True)
        once = bool(args)
        config = load_config(self.env)
        if not config.smtp_enabled:
            print('smtp_enabled is false in [notification]: worker not '
                  'started')
            sys.exit(1)
        for error in config.errors:
            self.log.warning('tracnotify: %s', error)
        worker = Worker(self.env)
        worker.install_signal_handlers()
        self.log.info('tracnotify worker started')
        worker.run(once=once)
        self.log.info('tracnotify worker stopped after %d passes, %d sent',
                      worker.passes, worker.sent)
        print('worker stopped: %d sent' % worker.sent)
