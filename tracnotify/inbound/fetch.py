"""``trac-admin ENV notify fetch``: take replies and bounces from an IMAP
mailbox (stdlib :mod:`imaplib`).

Each message of ``imap_folder`` goes through the one inbound entry,
:func:`tracnotify.inbound.receive.receive`, as if an MTA had piped it to
``notify receive``; its exit code decides what happens to it in the
mailbox:

* 0 (taken: a reply saved, a bounce counted, an auto-reply dropped):
  flagged ``\\Seen \\Deleted`` at once and expunged at the end of the run
  (``UID EXPUNGE`` when the server has UIDPLUS, so nothing else goes);
* 75 (a temporary failure, e.g. the database is locked): left as it is
  for the next run, and the run stops there (a 75 for an internal error,
  which no retry cures, is moved aside instead);
* anything else (refused: a forged token, no permission...): moved to
  ``imap_failed_folder`` (``MOVE``, else ``COPY`` and delete), where an
  administrator can read it; it is never lost.

A message is marked right after it was taken, so a run that dies
halfway fetches only that one message again next time (a bounce is
counted once per copy whatever happens).  The password is never written
to the log, the output or an error.  ``notify worker`` runs a fetch every
``imap_fetch_interval`` seconds (:class:`PeriodicFetch`).
"""

import imaplib
import os
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from trac.admin.api import AdminCommandError, IAdminCommandProvider
from trac.config import ChoiceOption, IntOption, Option
from trac.core import Component, implements
from trac.util.text import exception_to_unicode

from tracnotify.config import SECTION, _Reader
from tracnotify.i18n.domain import _

IMAP_TLS = ('starttls', 'ssl', 'none')
DEFAULT_PORTS = {'starttls': 143, 'none': 143, 'ssl': 993}
EX_TEMPFAIL = 75
#: how receive() words a 75 that no retry cures (a bug, not a locked
#: database): such a message is moved aside, or it would block the
#: folder at every run
INTERNAL_ERROR = 'internal error'


class FetchOptions(Component):
    """Options of `[notification]` for `notify fetch` (IMAP)."""

    imap_host = Option(SECTION, 'imap_host', '',
        """IMAP server that `notify fetch` (and `notify worker`, see
        `imap_fetch_interval`) takes replies and bounces from. Empty: no
        fetching. (tracnotify)""")

    imap_port = IntOption(SECTION, 'imap_port', 0,
        """Port of `imap_host`; 0 means the usual one: 993 with
        `imap_tls = ssl`, else 143. (tracnotify)""")

    imap_tls = ChoiceOption(SECTION, 'imap_tls', IMAP_TLS,
        """`starttls` (the default: plain IMAP upgraded to TLS before
        login), `ssl` (implicit TLS, usually port 993) or `none` (no
        encryption: only for a server on the same machine). Certificates
        are always verified. (tracnotify)""")

    imap_ssl_cafile = Option(SECTION, 'imap_ssl_cafile', '',
        """A PEM file of CA certificates to trust for the IMAP server (e.g.
        a private CA); empty: the system's. (tracnotify)""")

    imap_user = Option(SECTION, 'imap_user', '',
        """User name for the IMAP login. (tracnotify)""")

    imap_password = Option(SECTION, 'imap_password', '',
        """Password for the IMAP login (never shown back).
        (tracnotify)""")

    imap_folder = Option(SECTION, 'imap_folder', 'INBOX',
        """Mailbox folder read by `notify fetch`; every message in it is
        taken as a reply or a bounce: give tracnotify a mailbox of its
        own. (tracnotify)""")

    imap_failed_folder = Option(SECTION, 'imap_failed_folder',
                                'tracnotify-failed',
        """Folder that refused messages are moved to (created when
        needed), for an administrator to read. (tracnotify)""")

    imap_fetch_interval = IntOption(SECTION, 'imap_fetch_interval', 0,
        """Seconds between two fetches by `trac-admin ENV notify worker`;
        0: the worker does not fetch (run `notify fetch` from cron).
        (tracnotify)""")

    imap_timeout = IntOption(SECTION, 'imap_timeout', 30,
        """Seconds to wait for the IMAP server before a fetch fails.
        (tracnotify)""")


@dataclass
class FetchSettings:
    """Validated IMAP settings (``errors``: the values that were refused)."""

    host: str = ''
    port: int = 143
    tls: str = 'starttls'
    cafile: str = ''
    user: str = ''
    password: str = field(default='', repr=False)
    folder: str = 'INBOX'
    failed_folder: str = 'tracnotify-failed'
    interval: int = 0
    timeout: int = 30
    errors: List[str] = field(default_factory=list)

    @property
    def configured(self) -> bool:
        """Whether there is a mailbox to fetch from."""
        return bool(self.host)

    def describe(self) -> str:
        """``user@host:port (tls) folder`` for logs and output."""
        return '%s@%s:%d (%s) %s' % (self.user, self.host, self.port,
                                     self.tls, self.folder)


def load_fetch_settings(env) -> FetchSettings:
    """The IMAP options of *env* (or of a view of a configuration);
    never raises."""
    ini = env.config
    r = _Reader(ini)
    s = FetchSettings()
    s.host = r.text('imap_host')
    s.tls = r.choice('imap_tls', IMAP_TLS, 'starttls')
    port = r.integer('imap_port', 0, 0, 65535)
    s.port = port or DEFAULT_PORTS[s.tls]
    s.cafile = r.text('imap_ssl_cafile')
    if s.cafile and not os.path.isfile(s.cafile):
        r.errors.append('[notification] imap_ssl_cafile = %r: no such file; '
                        'using the system CAs' % s.cafile)
        s.cafile = ''
    s.user = r.text('imap_user')
    s.password = ini.get(SECTION, 'imap_password', '') or ''
    s.folder = r.text('imap_folder', 'INBOX') or 'INBOX'
    s.failed_folder = r.text('imap_failed_folder', 'tracnotify-failed') or \
        'tracnotify-failed'
    if s.failed_folder == s.folder:
        r.errors.append('[notification] imap_failed_folder = %r is '
                        'imap_folder; using tracnotify-failed'
                        % s.failed_folder)
        s.failed_folder = 'tracnotify-failed'
    s.interval = r.integer('imap_fetch_interval', 0, 0, 86400)
    s.timeout = r.integer('imap_timeout', 30, 1, 3600)
    if s.host and not s.user:
        r.errors.append('[notification] imap_user is not set: notify fetch '
                        'cannot log in to %s' % s.host)
    s.errors = r.errors
    return s


class FetchError(Exception):
    """The mailbox could not be read (the server, TLS, the login); the
    text never holds the password."""


@dataclass
class FetchReport:
    """What one fetch did."""

    taken: int = 0
    moved: int = 0
    left: int = 0
    #: how many messages of each ``Outcome.kind`` were taken or moved
    kinds: Counter = field(default_factory=Counter)
    errors: List[str] = field(default_factory=list)

    @property
    def seen(self) -> int:
        return self.taken + self.moved + self.left


def _quote(folder: str) -> str:
    """*folder* as an IMAP astring (quoted)."""
    return '"%s"' % folder.replace('\\', '\\\\').replace('"', '\\"')


def default_handler(env, raw: bytes):
    """The one inbound entry (the same as ``notify receive``)."""
    from tracnotify.inbound.receive import receive
    return receive(env, raw)


class MailboxFetcher:
    """One run over the IMAP folder of *settings* (see the module doc)."""

    def __init__(self, env, settings: FetchSettings,
                 handle: Optional[Callable] = None) -> None:
        self.env = env
        self.settings = settings
        self.handle = handle or default_handler
        self.log = env.log

    def run(self, limit: Optional[int] = None) -> FetchReport:
        """Fetch and hand on up to *limit* messages (all by default);
        raises :class:`FetchError` when the mailbox cannot be read."""
        report = FetchReport()
        conn = self._connect()
        try:
            self._check(conn.select(_quote(self.settings.folder)),
                        'cannot open folder %s' % self.settings.folder)
            typ, data = conn.uid('SEARCH', None, 'UNDELETED')
            self._check((typ, data), 'cannot search %s'
                        % self.settings.folder)
            uids = (data[0] or b'').split()
            if limit is not None:
                uids = uids[:limit]
            done: List[bytes] = []
            for uid in uids:
                raw = self._fetch(conn, uid)
                if raw is None:
                    continue
                code, kind, reason = self._hand_on(raw, report)
                if code == EX_TEMPFAIL and \
                        not reason.startswith(INTERNAL_ERROR):
                    report.left += 1
                    break               # the database is away: later
                report.kinds[kind] += 1
                if code == 0:
                    self._check(conn.uid('STORE', uid, '+FLAGS.SILENT',
                                         r'(\Seen \Deleted)'),
                                'cannot mark message %s' % uid.decode())
                    report.taken += 1
                else:
                    self._move_aside(conn, uid)
                    report.moved += 1
                done.append(uid)
            if done:
                self._expunge(conn, done)
        except (imaplib.IMAP4.error, OSError, ssl.SSLError) as e:
            raise FetchError(self._describe(e))
        finally:
            try:
                conn.logout()
            except Exception:
                pass
        return report

    def _connect(self) -> imaplib.IMAP4:
        s = self.settings
        if not s.configured:
            raise FetchError('imap_host is not set in [notification]')
        try:
            context = ssl.create_default_context(cafile=s.cafile or None)
            if s.tls == 'ssl':
                conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    s.host, s.port, ssl_context=context, timeout=s.timeout)
            else:
                conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
                if s.tls == 'starttls':
                    conn.starttls(ssl_context=context)
        except (imaplib.IMAP4.error, OSError, ssl.SSLError) as e:
            raise FetchError(self._describe(e))
        try:
            conn.login(s.user, s.password)
        except (imaplib.IMAP4.error, OSError, ssl.SSLError) as e:
            try:
                conn.logout()
            except Exception:
                pass
            raise FetchError('login as %s refused by %s:%d: %s' % (
                s.user, s.host, s.port, self._text(e)))
        return conn

    def _fetch(self, conn: imaplib.IMAP4, uid: bytes) -> Optional[bytes]:
        typ, data = conn.uid('FETCH', uid, '(BODY.PEEK[])')
        self._check((typ, data), 'cannot fetch message %s' % uid.decode())
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1]
        return None                      # expunged meanwhile by another

    def _hand_on(self, raw: bytes, report: FetchReport):
        """``(exit code, kind, reason)`` of the inbound entry for *raw*;
        an exception (a bug) moves the message aside, it is never lost."""
        try:
            outcome = self.handle(self.env, raw)
            return outcome.exit_code, outcome.kind or 'unknown', \
                outcome.reason or ''
        except Exception as e:
            self.log.error('tracnotify: notify fetch: a message could not be '
                           'handled: %s', exception_to_unicode(
                               e, traceback=True))
            report.errors.append(exception_to_unicode(e))
            return 70, 'error', INTERNAL_ERROR

    def _move_aside(self, conn: imaplib.IMAP4, uid: bytes) -> None:
        target = _quote(self.settings.failed_folder)
        conn.create(target)              # NO when it exists: fine
        if b'MOVE' in self._capabilities(conn):
            self._check(conn.uid('MOVE', uid, target),
                        'cannot move message %s to %s' % (
                            uid.decode(), self.settings.failed_folder))
            return
        self._check(conn.uid('COPY', uid, target),
                    'cannot copy message %s to %s' % (
                        uid.decode(), self.settings.failed_folder))
        self._check(conn.uid('STORE', uid, '+FLAGS.SILENT', r'(\Deleted)'),
                    'cannot mark message %s' % uid.decode())

    def _expunge(self, conn: imaplib.IMAP4, uids: List[bytes]) -> None:
        if b'UIDPLUS' in self._capabilities(conn):
            conn.uid('EXPUNGE', b','.join(uids).decode())
        else:
            conn.expunge()

    @staticmethod
    def _capabilities(conn: imaplib.IMAP4) -> set:
        return {c.upper().encode() if isinstance(c, str) else c.upper()
                for c in conn.capabilities}

    @staticmethod
    def _check(answer, what: str) -> None:
        typ, data = answer
        if typ != 'OK':
            detail = b' '.join(d for d in data if isinstance(d, bytes))
            raise FetchError('%s: %s' % (what, detail.decode('utf-8',
                                                             'replace')))

    def _describe(self, e: BaseException) -> str:
        s = self.settings
        where = '%s:%d (%s)' % (s.host, s.port, s.tls)
        if isinstance(e, FetchError):
            return str(e)
        if isinstance(e, ssl.SSLError):
            return 'TLS failure with %s: %s' % (where, e)
        if isinstance(e, ConnectionRefusedError):
            return 'connection refused by %s' % where
        if isinstance(e, (socket.timeout, TimeoutError)):
            return 'timed out talking to %s (imap_timeout = %ss)' % (
                where, s.timeout)
        return '%s: %s' % (where, self._text(e))

    def _text(self, e: BaseException) -> str:
        text = exception_to_unicode(e)
        if self.settings.password:
            text = text.replace(self.settings.password, '***')
        return text


def fetch(env, settings: Optional[FetchSettings] = None,
          limit: Optional[int] = None) -> FetchReport:
    """One fetch with the options of *env* (see :class:`MailboxFetcher`)."""
    settings = settings or load_fetch_settings(env)
    return MailboxFetcher(env, settings).run(limit)


class PeriodicFetch:
    """What ``notify worker`` calls each pass: a fetch when
    ``imap_fetch_interval`` seconds have passed since the last (0: never).
    Never raises: a failure is logged and tried again at the next
    interval."""

    def __init__(self, env) -> None:
        self.env = env
        self._last: Optional[float] = None
        self.runs = 0

    def run_if_due(self) -> Optional[FetchReport]:
        try:
            settings = load_fetch_settings(self.env)
        except Exception as e:
            self.env.log.error('tracnotify: IMAP settings: %s',
                               exception_to_unicode(e))
            return None
        if not settings.configured or not settings.interval:
            return None
        now = time.monotonic()
        if self._last is not None and now - self._last < settings.interval:
            return None
        self._last = now
        self.runs += 1
        try:
            report = MailboxFetcher(self.env, settings).run()
        except Exception as e:
            self.env.log.warning('tracnotify: notify fetch from %s failed: '
                                 '%s', settings.describe(),
                                 exception_to_unicode(e))
            return None
        if report.seen:
            self.env.log.info('tracnotify: fetched %d message(s) from %s: '
                              '%d taken, %d moved aside, %d left',
                              report.seen, settings.describe(),
                              report.taken, report.moved, report.left)
        return report


class FetchCommand(Component):
    """``trac-admin ENV notify fetch``."""

    implements(IAdminCommandProvider)

    def get_admin_commands(self):
        yield ('notify fetch', '[--quiet]',
               """Take replies and bounces from the IMAP mailbox

               Each message of `imap_folder` is handled as `notify
               receive` would; taken ones are deleted, refused ones moved
               to `imap_failed_folder`, those hit by a temporary failure
               left for the next run. For cron: with --quiet, prints
               nothing unless something failed.""",
               None, self._do_fetch)

    def _do_fetch(self, *args):
        if set(args) - {'--quiet'}:
            raise AdminCommandError(_('Invalid arguments'), show_usage=True)
        settings = load_fetch_settings(self.env)
        for error in settings.errors:
            self.log.warning('tracnotify: %s', error)
        if not settings.configured:
            raise AdminCommandError(_('imap_host is not set in '
                                      '[notification]: nothing to fetch'))
        try:
            report = MailboxFetcher(self.env, settings).run()
        except FetchError as e:
            raise AdminCommandError(_('Cannot fetch from %(where)s: '
                                      '%(error)s', where=settings.describe(),
                                      error=str(e)))
        if '--quiet' not in args or report.moved or report.left or \
                report.errors:
            print(_('Fetched %(seen)d message(s) from %(where)s: %(taken)d '
                    'taken, %(moved)d moved to %(folder)s, %(left)d left '
                    'for later', seen=report.seen,
                    where=settings.describe(), taken=report.taken,
                    moved=report.moved, folder=settings.failed_folder,
                    left=report.left))
        if report.left:
            raise AdminCommandError(_('A temporary failure stopped the '
                                      'fetch; the rest is taken next time'))
