"""A test mail, built like ticket mail and sent now, with its exact outcome.

Used by the admin panel's "Test mail" page and ``trac-admin ENV notify test
ADDRESS``.  Nothing goes through the outbox: the mail is sent synchronously
through the transport ``[notification]`` selects, and for SMTP the
connection is opened step by step so that the stage that failed (connect,
TLS, authentication, sending) and the server's own words are reported.
"""

import inspect
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import List, Optional

from tracnotify.config import NotifyConfig, load_config
from tracnotify.delivery.transports import UnusableTransport, create_transport
from tracnotify.mail.message import (
    AddressError,
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
    make_address,
)
from tracnotify.outbox import OutgoingMessage

#: stages of a test, in order
STAGES = ('address', 'config', 'connect', 'tls', 'auth', 'send')


@dataclass
class TestOutcome:
    """What happened: ok, or the failed stage and the exact error."""

    __test__ = False  # not a pytest test class

    ok: bool
    stage: str
    error: str = ''
    transport: str = ''
    steps: List[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line: for the command line and logs."""
        if self.ok:
            return 'sent via %s' % self.transport
        return '%s failed: %s' % (self.stage, self.error)


def make_transport(config: NotifyConfig, env):
    """``create_transport(config, env)`` where it takes an env."""
    try:
        params = inspect.signature(create_transport).parameters
    except (TypeError, ValueError):
        params = {}
    if len(params) > 1:
        return create_transport(config, env)
    return create_transport(config)


def build_test_message(env, config: NotifyConfig,
                       address: str) -> OutgoingMessage:
    """A test mail to *address*, through the same code as ticket mail."""
    project = env.project_name
    subject = '[%s] tracnotify test mail' % project
    body = ('This is a test mail from the Trac project "%s"\n(%s).\n\n'
            'It was sent by tracnotify with these settings:\n'
            '  server: %s\n  from:   %s\n  mime_encoding: %s\n\n'
            'If you can read this, ticket notifications can reach you.\n'
            % (project, env.project_url or env.abs_href() or config.base_url,
               config.describe_server(), config.envelope_from,
               config.mime_encoding))
    domain = config.envelope_from.rpartition('@')[2] or None
    headers = MailHeaders(
        from_name=config.smtp_from_name or project,
        from_addr=config.envelope_from, reply_to=config.smtp_replyto,
        subject=subject, msgid=make_msgid('tracnotify.test', domain=domain),
        root_msgid=None, date=time.time(),
        extra=(('X-Mailer', 'tracnotify (Trac %s)' % env.trac_version),
               ('X-Trac-Project', project),
               ('X-Trac-Notification-Type', 'test')))
    shared = encode_shared_part(headers, body, config)
    recipient = Recipient(address, 'test')
    (_r, data), = build_copies(shared, [recipient], config)
    return OutgoingMessage(id=0, event_id=0, ticket=0, kind='test',
                           msgid=headers.msgid, sender=config.envelope_from,
                           recipient=address, reason='test', subject=subject,
                           message=data, attempts=0)


def _reply(code, text) -> str:
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    return ('%s %s' % (code, text)).strip()


def _connect_error(e: BaseException, where: str) -> tuple:
    """``(stage, message)`` for an exception raised while connecting."""
    if isinstance(e, smtplib.SMTPAuthenticationError):
        return 'auth', 'authentication failed: %s' % _reply(e.smtp_code,
                                                            e.smtp_error)
    if isinstance(e, ssl.SSLError):
        return 'tls', 'TLS failure with %s: %s' % (where, e)
    if isinstance(e, smtplib.SMTPNotSupportedError):
        return ('tls' if 'STARTTLS' in str(e).upper() else 'auth',
                '%s: %s' % (where, e))
    if isinstance(e, ConnectionRefusedError):
        return 'connect', 'connection refused by %s' % where
    if isinstance(e, (socket.timeout, TimeoutError)):
        return 'connect', 'timed out connecting to %s' % where
    if isinstance(e, socket.gaierror):
        return 'connect', 'cannot resolve %s: %s' % (where, e)
    if isinstance(e, smtplib.SMTPResponseException):
        return 'connect', 'SMTP error from %s: %s' % (
            where, _reply(e.smtp_code, e.smtp_error))
    return 'connect', '%s: %s' % (where, e or e.__class__.__name__)


def _smtp_steps(transport, config: NotifyConfig,
                outcome: TestOutcome) -> bool:
    """Open the SMTP connection step by step; hand it to *transport*."""
    where = config.describe_server()
    try:
        conn = transport.connect()
    except (smtplib.SMTPException, OSError) as e:
        outcome.stage, outcome.error = _connect_error(e, where)
        return False
    outcome.steps.append('connected to %s' % where)
    sock = getattr(conn, 'sock', None)
    if isinstance(sock, ssl.SSLSocket):
        outcome.steps.append('TLS: %s, certificate verified' % sock.version())
    if config.smtp_user:
        outcome.steps.append('authenticated as %s' % config.smtp_user)
    if hasattr(transport, '_conn'):
        transport._conn = conn       # send over the connection just checked
    else:
        transport._quietly_close(conn)
    return True


def send_test(env, address: str,
              config: Optional[NotifyConfig] = None) -> TestOutcome:
    """Build and send a test mail to *address* now; never raises for a
    delivery problem."""
    config = config or load_config(env)
    outcome = TestOutcome(False, 'address')
    try:
        make_address(address)
        if '@' not in address:
            raise AddressError('not a full e-mail address: %r' % address)
    except AddressError as e:
        outcome.error = str(e)
        return outcome
    outcome.stage = 'config'
    if not config.smtp_enabled:
        outcome.error = '[notification] smtp_enabled is off'
        return outcome
    try:
        message = build_test_message(env, config, address)
        transport = make_transport(config, env)
    except (AddressError, ValueError) as e:
        outcome.error = str(e)
        return outcome
    outcome.transport = transport.describe()
    if isinstance(transport, UnusableTransport):
        outcome.error = transport.error
        return outcome
    try:
        if hasattr(transport, 'connect'):
            outcome.stage = 'connect'
            if not _smtp_steps(transport, config, outcome):
                return outcome
        outcome.stage = 'send'
        result, = transport.send([message])
    finally:
        transport.close()
    if result.ok:
        outcome.ok = True
        outcome.steps.append('accepted for %s' % address)
    else:
        outcome.error = result.error
    return outcome
