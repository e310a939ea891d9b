"""``trac-admin ENV notify ...`` commands."""

import sys

from trac.admin.api import IAdminCommandProvider
from trac.core import Component, implements
from trac.util.datefmt import format_datetime, from_utimestamp

from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.delivery import Deliverer
from tracnotify.translation import _


class NotifyCommands(Component):
    """Inspect and drive the outbox from the command line (and cron)."""

    implements(IAdminCommandProvider)

    def get_admin_commands(self):
        yield ('notify status', '',
               'Show the outbox counts and the last delivery error',
               None, self._do_status)
        yield ('notify send', '',
               'Deliver every pending message now',
               None, self._do_send)

    def _do_status(self):
        config = load_config(self.env)
        counts = outbox.counts(self.env)
        print(_('Sending: %(state)s via %(server)s',
                state=_('enabled') if config.smtp_enabled else _('disabled'),
                server=config.describe_server()))
        print(_('Pending: %(pending)d  Retrying: %(retrying)d  '
                'Dead: %(dead)d  Sent (24h): %(sent)d  '
                'Unprocessed changes: %(events)d', **counts))
        last = outbox.last_error(self.env)
        if last:
            when, recipient, error = last
            print(_('Last error (%(when)s, %(to)s): %(error)s',
                    when=format_datetime(from_utimestamp(when)),
                    to=recipient, error=error))
        for error in config.errors:
            print(_('Configuration: %(error)s', error=error))

    def _do_send(self):
        config = load_config(self.env)
        if not config.smtp_enabled:
            print(_('smtp_enabled is false in [notification]: nothing sent'))
            sys.exit(1)

        def progress(report):
            sys.stdout.write('\r' + _('sent %(sent)d, retrying %(retrying)d, '
                                      'dead %(dead)d', sent=report.sent,
                                      retrying=report.retrying,
                                      dead=report.dead))
            sys.stdout.flush()

        report = Deliverer(self.env, config).run_once(
            progress=progress if sys.stdout.isatty() else None)
        print(_('Sent %(sent)d, retrying %(retrying)d, dead %(dead)d',
                sent=report.sent, retrying=report.retrying, dead=report.dead))
        if report.retrying or report.dead:
            print(report.errors[-1])
            sys.exit(2)
