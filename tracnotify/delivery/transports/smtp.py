"""SMTP: plain, STARTTLS (``use_tls``), SMTPS (``smtp_use_ssl``), AUTH.

One connection carries a whole batch.  Each message has a single envelope
recipient, so the server's answer is per recipient: 4xx and connection
problems are retried later, 5xx is recorded as dead for that recipient.
"""

import smtplib
import socket
import ssl
from typing import List, Optional, Sequence

from tracnotify.config import NotifyConfig
from tracnotify.delivery.transports.base import (
    SendResult,
    Transport,
    TransportKind,
    register,
)
from tracnotify.outbox import OutgoingMessage


def _reply_text(code: int, message) -> str:
    if isinstance(message, bytes):
        message = message.decode('utf-8', 'replace')
    return '%s %s' % (code, message)


def _is_permanent(code: Optional[int]) -> bool:
    return code is not None and 500 <= code < 600


class SmtpTransport(Transport):
    """Sends through an SMTP server, reusing one connection per batch."""

    name = 'smtp'

    def __init__(self, config: NotifyConfig,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.config = config
        self.ssl_context = ssl_context or ssl.create_default_context(
            cafile=config.smtp_ssl_cafile or None)
        self._conn: Optional[smtplib.SMTP] = None

    def describe(self) -> str:
        return 'SMTP %s' % self.config.describe_server()

    # Connection

    def connect(self) -> smtplib.SMTP:
        """Open, secure and authenticate a connection (raises on failure)."""
        c = self.config
        if c.smtp_use_ssl:
            conn = smtplib.SMTP_SSL(c.smtp_server, c.smtp_port,
                                    timeout=c.smtp_timeout,
                                    context=self.ssl_context)
        else:
            conn = smtplib.SMTP(c.smtp_server, c.smtp_port,
                                timeout=c.smtp_timeout)
        try:
            conn.ehlo_or_helo_if_needed()
            if c.use_tls:
                conn.starttls(context=self.ssl_context)
                conn.ehlo()
            if c.smtp_user:
                conn.login(c.smtp_user, c.smtp_password)
        except BaseException:
            self._quietly_close(conn)
            raise
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._quietly_close(self._conn)
            self._conn = None

    @staticmethod
    def _quietly_close(conn: smtplib.SMTP) -> None:
        try:
            conn.close()
        except OSError:
            pass

    # Sending

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        results: List[SendResult] = []
        for index, message in enumerate(messages):
            if self._conn is None:
                try:
                    self._conn = self.connect()
                except smtplib.SMTPAuthenticationError as e:
                    error = 'authentication failed: %s' % _reply_text(
                        e.smtp_code, e.smtp_error)
                    return results + [SendResult.retry(error)] * \
                        (len(messages) - index)
                except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
                    error = self._describe_error(e)
                    return results + [SendResult.retry(error)] * \
                        (len(messages) - index)
            results.append(self._send_one(message))
        return results

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        options: List[str] = []
        if not (message.recipient.isascii() and message.sender.isascii()):
            # an internationalised local part: only with SMTPUTF8 (RFC 6531)
            if not self._conn.has_extn('smtputf8'):
                return SendResult.dead(
                    'recipient %s needs SMTPUTF8 (RFC 6531), which %s does '
                    'not offer' % (message.recipient,
                                   self.config.describe_server()))
            options = ['SMTPUTF8']
            if self._conn.has_extn('8bitmime'):
                options.append('BODY=8BITMIME')
        try:
            try:
                refused = self._conn.sendmail(message.sender,
                                              [message.recipient],
                                              message.data,
                                              mail_options=options)
            finally:
                if self._conn is not None:   # smtplib keeps it after MAIL
                    self._conn.command_encoding = 'ascii'
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients.get(message.recipient, (None, b''))
            error = 'recipient refused: %s' % _reply_text(code, text)
            return SendResult(False, error, _is_permanent(code))
        except smtplib.SMTPSenderRefused as e:
            # about our side (STARTTLS or AUTH required, smtp_from not
            # allowed), not this recipient: retried until fixed or max attempts
            error = 'sender %s refused: %s' % (
                e.sender, _reply_text(e.smtp_code, e.smtp_error))
            return SendResult.retry(error)
        except smtplib.SMTPDataError as e:
            error = 'message refused: %s' % _reply_text(e.smtp_code,
                                                         e.smtp_error)
            return SendResult(False, error, _is_permanent(e.smtp_code))
        except (smtplib.SMTPException, OSError) as e:
            self._drop_connection()
            return SendResult.retry(self._describe_error(e))
        if refused:
            code, text = refused.get(message.recipient, (None, b''))
            return SendResult(False, _reply_text(code, text),
                              _is_permanent(code))
        return SendResult.sent()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._quietly_close(self._conn)
            self._conn = None

    def _describe_error(self, e: BaseException) -> str:
        where = self.config.describe_server()
        if isinstance(e, ssl.SSLError):
            return 'TLS failure with %s: %s' % (where, e)
        if isinstance(e, ConnectionRefusedError):
            return 'connection refused by %s' % where
        if isinstance(e, (socket.timeout, TimeoutError)) or \
                isinstance(e.__context__, (socket.timeout, TimeoutError)):
            # smtplib turns a timeout while reading a reply into
            # SMTPServerDisconnected('Connection unexpectedly closed')
            return 'timed out talking to %s (smtp_timeout = %ss)' % (
                where, self.config.smtp_timeout)
        if isinstance(e, smtplib.SMTPServerDisconnected):
            return 'server %s disconnected: %s' % (where, e)
        if isinstance(e, smtplib.SMTPResponseException):
            return 'SMTP error from %s: %s' % (
                where, _reply_text(e.smtp_code, e.smtp_error))
        if isinstance(e, smtplib.SMTPNotSupportedError):
            return '%s: %s' % (where, e)
        return '%s: %s' % (where, e or e.__class__.__name__)


register(TransportKind(
    'smtp', 10,
    # its options are the NotifyConfig's (smtp_server, use_tls...)
    build=lambda _options, config, log: SmtpTransport(config)))
