"""``trac-admin ENV notify ...`` commands.

Output is plain lines, fit for cron and scripts.  A failure is reported as
one ``Error: ...`` line on stderr and exit status 2 (Trac's
``AdminCommandError``); success exits with 0.
"""

import inspect
import sys

from trac.admin.api import (
    AdminCommandError,
    AdminCommandManager,
    IAdminCommandProvider,
)
from trac.admin.console import TracAdmin
from trac.core import Component, implements
from trac.util.datefmt import format_datetime, from_utimestamp
from trac.util.text import print_table

from tracnotify import outbox
from tracnotify.alerts.status import status_lines as alert_status_lines
from tracnotify.config import load_config
from tracnotify.delivery.deliverer import Deliverer
from tracnotify.delivery.testmail import send_test
from tracnotify.i18n.domain import _
from tracnotify.outbox import maintenance as queue_admin
from tracnotify.web.bounces import status_lines as bounce_status_lines
from tracnotify.web.replies import status_lines as reply_status_lines
from tracnotify.web.settings_form import check_stored

DEFAULT_PURGE_DAYS = 30


def _when(us) -> str:
    return format_datetime(from_utimestamp(us), 'iso8601') if us else ''


class NotifyCommands(Component):
    """Inspect and drive the outbox from the command line (and cron)."""

    implements(IAdminCommandProvider)

    def get_admin_commands(self):
        yield ('notify status', '',
               """Show the outbox counts and the last delivery error

               Lists every [notification] value that the Mail Settings
               page would refuse, and then fails.""",
               None, self._do_status)
        yield ('notify pending', '[pending|retrying|dead]',
               """List unsent messages: waiting, retrying and dead ones

               With an argument, only that kind: `pending` (not tried
               yet), `retrying` (failed, will be tried again) or `dead`
               (given up).""",
               self._complete_pending, self._do_pending)
        yield ('notify send', '[--now] [--quiet]',
               """Deliver every message that is due

               Says how many messages wait for a later attempt (after a
               failed one) and when the first is due. With --now, those
               are sent now too (like `postqueue -f`; dead messages need
               `notify retry`). Shows a progress line on a terminal. With
               --quiet, prints nothing unless a message failed (for
               cron).""",
               None, self._do_send)
        yield ('notify test', '<address>',
               'Send a test mail to <address> now, report the outcome',
               None, self._do_test)
        yield ('notify retry', '<id|all>',
               'Make retrying or dead messages (or all) due now',
               None, self._do_retry)
        yield ('notify purge', '[--sent-older-than DAYS]',
               """Delete sent mail older than DAYS days (default %d)

               Processed ticket changes of that age that have no message
               left are deleted too, and so are reply addresses expired
               and records of received mail older than that.""" %
               DEFAULT_PURGE_DAYS,
               None, self._do_purge)
        yield ('notify receive', '[--recipient ADDRESS]',
               """Take one e-mail message on standard input (from an MTA)

               A reply to ticket mail becomes a comment; a bounce counts
               against its address; automatic mail is dropped. ADDRESS is
               the envelope recipient (Postfix: ${original_recipient});
               without it the Delivered-To, X-Original-To or To header
               says. Exit status as sendmail expects: 0 taken (or
               dropped, or refused with an explanation mailed back), 67
               unknown or expired reply address, 75 try again later.""",
               None, self._do_receive)
        # last, so that every `notify <subcommand>` above matches first
        yield ('notify', '',
               'List the notify subcommands',
               self._complete_notify, self._do_notify)

    def _complete_pending(self, args):
        if len(args) == 1:
            return ['pending', 'retrying', 'dead']

    def _subcommands(self) -> list:
        """Every ``notify <name>`` command of every provider (the
        ``notify worker`` of :mod:`tracnotify.delivery.worker` too)."""
        found = []
        for provider in AdminCommandManager(self.env).providers:
            for cmd in provider.get_admin_commands() or []:
                parts = cmd[0].split()
                if len(parts) > 1 and parts[0] == 'notify':
                    found.append(cmd)
        return sorted(found)

    def _complete_notify(self, args):
        if len(args) == 1:
            return [cmd[0].split()[1] for cmd in self._subcommands()]
        for cmd in self._subcommands():
            if cmd[0].split()[1] == args[0]:
                return cmd[3](args[1:]) if cmd[3] else []
        return []

    # Commands

    def _do_notify(self, *args):
        """Plain ``notify``: the list of subcommands.  Trac matches
        commands by prefix, so ``notify <name>`` of a provider asked after
        this one arrives here too and is passed on."""
        if not args:
            TracAdmin.print_doc([cmd[:3] for cmd in self._subcommands()],
                                short=True)
            return
        for cmd in self._subcommands():
            parts = cmd[0].split()[1:]
            if list(args[:len(parts)]) == parts:
                fargs = args[len(parts):]
                try:
                    inspect.signature(cmd[4]).bind(*fargs)
                except TypeError:
                    raise AdminCommandError(_('Invalid arguments'),
                                            show_usage=True, cmd=cmd[0])
                return cmd[4](*fargs)
        raise AdminCommandError(_('Command not found'), show_usage=True)

    def _do_status(self):
        config = load_config(self.env)
        counts = outbox.counts(self.env)
        print(_('Sending: %(state)s via %(server)s (delivery: %(mode)s)',
                state=_('enabled') if config.smtp_enabled else _('disabled'),
                server=config.describe_server(), mode=config.delivery))
        print(_('Pending: %(pending)d  Retrying: %(retrying)d  '
                'Dead: %(dead)d  Sent (24h): %(sent)d  '
                'Unprocessed changes: %(events)d', **counts))
        last = outbox.last_error(self.env)
        if last:
            when, recipient, error = last
            print(_('Last error (%(when)s, %(to)s): %(error)s',
                    when=_when(when), to=recipient, error=error))
        for line in reply_status_lines(self.env):
            print(line)
        for line in bounce_status_lines(self.env):
            print(line)
        errors, warnings = check_stored(self.config, self.env.path)
        for error in list(errors.values()) + warnings:
            print(_('Configuration: %(error)s', error=error))
        for line in alert_status_lines(self.env, config):   # alerts/
            print(line)
        if errors:
            raise AdminCommandError(_(
                'The Mail Settings page would refuse [notification] '
                '%(names)s (see above)', names=', '.join(errors)))

    def _do_pending(self, status='all'):
        if status not in queue_admin.FILTERS:
            raise AdminCommandError(
                _('Unknown kind %(kind)s: use pending, retrying or dead',
                  kind=status))
        rows = queue_admin.list_queue(self.env, status, limit=None)
        if not rows:
            print(_('No unsent messages.'))
            return
        print_table([(m.id, m.status, m.attempts, _when(m.next_attempt)
                      if m.status != 'dead' else '', m.recipient,
                      m.subject, (m.last_error or '').splitlines()[0]
                      if m.last_error else '') for m in rows],
                    [_('Id'), _('State'), _('Attempts'), _('Next try'),
                     _('Recipient'), _('Subject'), _('Last error')])

    def _do_send(self, *args):
        quiet = '--quiet' in args
        if set(args) - {'--quiet', '--now'}:
            raise AdminCommandError(_('Invalid arguments'), show_usage=True)
        config = load_config(self.env)
        if not config.smtp_enabled:
            raise AdminCommandError(_('smtp_enabled is off in '
                                      '[notification]: nothing sent'))
        if '--now' in args:
            queue_admin.make_due(self.env)
        tty = sys.stdout.isatty() and not quiet

        def progress(report):
            sys.stdout.write('\r' + _('sent %(sent)d, retrying %(retrying)d, '
                                      'dead %(dead)d', sent=report.sent,
                                      retrying=report.retrying,
                                      dead=report.dead))
            sys.stdout.flush()

        report = Deliverer(self.env, config).run_once(
            progress=progress if tty else None)
        if tty and report.attempted:
            sys.stdout.write('\n')
        failed = report.retrying or report.dead
        if not quiet or failed:
            waiting, first = queue_admin.waiting(self.env)
            if waiting:
                print(_('Sent %(sent)d, retrying %(retrying)d, dead '
                        '%(dead)d; %(waiting)d waiting for a retry, next at '
                        '%(when)s', sent=report.sent,
                        retrying=report.retrying, dead=report.dead,
                        waiting=waiting, when=_when(first)))
                print(_('"notify send --now" sends them now.'))
            else:
                print(_('Sent %(sent)d, retrying %(retrying)d, dead %(dead)d',
                        sent=report.sent, retrying=report.retrying,
                        dead=report.dead))
        if failed:
            raise AdminCommandError(report.errors[-1])

    def _do_test(self, address):
        outcome = send_test(self.env, address)
        for step in outcome.steps:
            print(step)
        if not outcome.ok:
            raise AdminCommandError(outcome.summary)
        print(_('Test mail to %(address)s sent via %(transport)s',
                address=address, transport=outcome.transport))

    def _do_receive(self, *args):
        recipient = None
        if args:
            if len(args) != 2 or args[0] != '--recipient':
                raise AdminCommandError(_('Invalid arguments'),
                                        show_usage=True)
            recipient = args[1]
        from tracnotify.inbound.receive import receive
        outcome = receive(self.env, sys.stdin.buffer.read(), recipient)
        stream = sys.stdout if outcome.exit_code == 0 else sys.stderr
        stream.write('%s %s: %s\n' % (outcome.kind, outcome.outcome,
                                      outcome.reason))
        stream.flush()
        return outcome.exit_code

    def _do_retry(self, which):
        if which == 'all':
            n = queue_admin.retry(self.env)
        else:
            try:
                ids = [int(which)]
            except ValueError:
                raise AdminCommandError(_('Expected a message id or "all", '
                                          'not %(arg)s', arg=which),
                                        show_usage=True)
            n = queue_admin.retry(self.env, ids)
            if not n:
                raise AdminCommandError(_('No unsent message #%(id)s',
                                          id=which))
        print(_('%(n)d message(s) due now', n=n))

    def _do_purge(self, *args):
        days = DEFAULT_PURGE_DAYS
        if args:
            if len(args) != 2 or args[0] != '--sent-older-than':
                raise AdminCommandError(_('Invalid arguments'),
                                        show_usage=True)
            try:
                days = int(args[1])
                if days < 0:
                    raise ValueError(days)
            except ValueError:
                raise AdminCommandError(_('DAYS must be a whole number >= 0, '
                                          'not %(arg)s', arg=args[1]))
        messages, events = queue_admin.purge_sent(self.env, days)
        print(_('Purged %(messages)d sent message(s) and %(events)d '
                'processed change(s) older than %(days)d day(s)',
                messages=messages, events=events, days=days))
        from tracnotify.inbound import record, tokens
        expired = tokens.purge_expired(self.env, days)
        received = record.purge(self.env, days)
        if expired or received:
            print(_('Purged %(tokens)d reply address(es) expired and '
                    '%(records)d received mail record(s) older than '
                    '%(days)d day(s)', tokens=expired, records=received,
                    days=days))
