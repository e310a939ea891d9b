"""SMTP: plain, STARTTLS (``use_tls``), SMTPS (``smtp_use_ssl``), AUTH.

One connection carries a whole batch.  Each message has a single envelope
recipient, so the server's answer is per recipient: 4xx and connection
problems are retried later, 5xx is recorded as dead for that recipient.

A server that offers PIPELINING (RFC 2920; Postfix, Exim and most relays
do) gets each message in one round trip: its text, its end and the next
message's MAIL, RCPT and DATA are written together, and the replies are
read in order (:meth:`SmtpTransport._send_pipelined`).  The bytes of each
message are those ``smtplib.sendmail`` writes.
"""

import functools
import re
import smtplib
import socket
import ssl
from typing import List, Optional, Sequence, Tuple

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


#: addresses that ``smtplib.quoteaddr`` writes back as ``<address>``
_plain_address_re = re.compile(r'^[A-Za-z0-9_+=.-]+@[A-Za-z0-9.-]+$')
_period_re = re.compile(br'(?m)^\.')


@functools.lru_cache(maxsize=256)
def _quoted(address: str) -> bytes:
    """``<address>`` as ``smtplib`` writes it in MAIL and RCPT."""
    if _plain_address_re.match(address):
        return b'<' + address.encode('ascii') + b'>'
    return smtplib.quoteaddr(address).encode('ascii')


#: a message bigger than this is written piece by piece, not joined
_JOIN_LIMIT = 65536


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA of *data* with its end (``smtplib.SMTP.data``)."""
    return _stuffed(data) + _end_of(data)


def _stuffed(data: bytes) -> bytes:
    """*data* with its lines that start with a dot doubled (RFC 5321)."""
    if data.startswith(b'.') or b'\n.' in data:
        return _period_re.sub(b'..', data)
    return data


def _end_of(data: bytes) -> bytes:
    """What ends the DATA of *data* (its last line ended first)."""
    return b'.\r\n' if data[-2:] == b'\r\n' else b'\r\n.\r\n'


class _Wire:
    """The DATA of each message of a batch, as pieces: the copy's own
    headers, then its shared part, encoded and dot-stuffed once for all
    the copies that hold it (a 1 MB part is not copied per copy)."""

    def __init__(self) -> None:
        self._shared: dict = {}     # id(shared) -> (str, stuffed, size)

    def pieces(self, message: OutgoingMessage) -> Tuple[List[bytes], int]:
        """``(pieces, size)``: what to write, and the size smtplib gives
        in MAIL (the message before dot-stuffing)."""
        head = message.message.encode('utf-8')
        shared = message.shared
        if len(shared) < 2 or (head and not head.endswith(b'\n')):
            whole = message.data     # no part of its own line start
            return [_dot_stuffed(whole)], len(whole)
        known = self._shared.get(id(shared))
        if known is None or known[0] is not shared:
            raw = shared.encode('utf-8')
            known = self._shared[id(shared)] = (
                shared, _stuffed(raw) + _end_of(raw), len(raw))
        return [_stuffed(head), known[1]], len(head) + known[2]


class SmtpTransport(Transport):
    """Sends through an SMTP server, reusing one connection per batch."""

    name = 'smtp'

    def __init__(self, config: NotifyConfig,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.config = config
        self._ssl_context = ssl_context
        self._conn: Optional[smtplib.SMTP] = None

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context (``smtp_ssl_cafile`` or the system's CAs), made
        when TLS is first used: loading the CAs takes tens of ms, which a
        plain connection need not pay at each pass."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(
                cafile=self.config.smtp_ssl_cafile or None)
        return self._ssl_context

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
        index = 0
        while index < len(messages):
            message = messages[index]
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
            if self._conn.has_extn('pipelining') and _ascii(message):
                done = self._send_pipelined(messages[index:])
            else:
                done = [self._send_one(message)]
            results += done
            index += len(done)
        return results

    def _send_pipelined(self, messages: Sequence[OutgoingMessage]
                        ) -> List[SendResult]:
        """Send the leading messages of *messages* that need no SMTPUTF8,
        one round trip each (RFC 2920: the text of one message and the
        next one's MAIL, RCPT, DATA in one write); their results.  Stops
        early when the connection is lost (the one in flight: retried)."""
        conn = self._conn
        plain = []
        for message in messages:
            if not _ascii(message):
                break
            plain.append(message)
        size = conn.does_esmtp and conn.has_extn('size')
        wire = _Wire()
        results: List[SendResult] = []
        try:
            data = wire.pieces(plain[0])
            conn.send(_envelope(plain[0], data[1], size))
            for index, message in enumerate(plain):
                mail, rcpt, go = conn.getreply(), conn.getreply(), \
                    conn.getreply()
                following = plain[index + 1] if index + 1 < len(plain) \
                    else None
                next_data = wire.pieces(following) \
                    if following is not None else ([], 0)
                tail = _envelope(following, next_data[1], size) \
                    if following is not None else b''
                error = _envelope_error(message, mail, rcpt, go)
                if 421 in (mail[0], rcpt[0], go[0]):
                    # the server is closing: the rest go on a new connection
                    results.append(error or SendResult.retry(
                        'message refused: %s' % _reply_text(*go)))
                    self._drop_connection()
                    return results
                if go[0] == 354:
                    # the text, or (a server that took DATA without a
                    # recipient) an empty one
                    _write(conn, (data[0] if error is None
                                  else [b'.\r\n']) + [tail])
                    end = conn.getreply()
                    if error is None and end[0] != 250:
                        error = SendResult(
                            False, 'message refused: %s' % _reply_text(*end),
                            _is_permanent(end[0]))
                    if end[0] == 421:
                        results.append(error)
                        self._drop_connection()
                        return results
                else:       # the transaction may be open: reset it
                    conn.send(b'rset\r\n' + tail)
                    conn.getreply()
                results.append(error or SendResult.sent())
                data = next_data
        except (smtplib.SMTPException, OSError) as e:
            self._drop_connection()
            results.append(SendResult.retry(self._describe_error(e)))
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


def _ascii(message: OutgoingMessage) -> bool:
    """Whether *message* goes without SMTPUTF8."""
    return message.recipient.isascii() and message.sender.isascii()


def _envelope(message: OutgoingMessage, length: int, size: bool) -> bytes:
    """MAIL (with SIZE when *size*: *length*), RCPT and DATA of *message*,
    as ``smtplib`` writes them."""
    return b'mail FROM:' + _quoted(message.sender) + \
        (b' size=%d' % length if size else b'') + b'\r\nrcpt TO:' + \
        _quoted(message.recipient) + b'\r\ndata\r\n'


def _write(conn: smtplib.SMTP, pieces: List[bytes]) -> None:
    """Write *pieces* in one go (joined when small)."""
    if sum(len(piece) for piece in pieces) <= _JOIN_LIMIT:
        conn.send(b''.join(pieces))
        return
    for piece in pieces:
        if piece:
            conn.send(piece)


def _envelope_error(message: OutgoingMessage, mail: Tuple[int, bytes],
                    rcpt: Tuple[int, bytes], go: Tuple[int, bytes]
                    ) -> Optional[SendResult]:
    """The outcome of the replies to MAIL, RCPT and DATA, as
    :meth:`SmtpTransport._send_one` words it, or None when all three
    accepted."""
    if mail[0] != 250:
        # about our side (see _send_one): retried until fixed
        return SendResult.retry('sender %s refused: %s' % (
            message.sender, _reply_text(*mail)))
    if rcpt[0] not in (250, 251):
        return SendResult(False, 'recipient refused: %s' % _reply_text(*rcpt),
                          _is_permanent(rcpt[0]))
    if go[0] != 354:
        return SendResult(False, 'message refused: %s' % _reply_text(*go),
                          _is_permanent(go[0]))
    return None


register(TransportKind(
    'smtp', 10,
    # its options are the NotifyConfig's (smtp_server, use_tls...)
    build=lambda _options, config, log: SmtpTransport(config)))
