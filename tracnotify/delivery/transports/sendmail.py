"""sendmail: pipe each message to a local sendmail-compatible program.

The command is ``sendmail_path -i [-t] sendmail_args [-- recipient]``.
``-i`` is always given, so a line holding a single "." never ends the
message early.  By default the envelope recipient goes on the command line
(after ``--``), which is the only way a Bcc copy reaches its recipient: no
header of such a copy names it.  With ``sendmail_recipients = headers`` the
program reads To/Cc itself (``-t``); a copy whose headers do not name
exactly its own recipient is refused (it would be lost or sent twice).

A non-zero exit status, a missing program and a program that hangs longer
than ``sendmail_timeout`` (it is killed, with its children) are temporary
failures; the error is what the program wrote on stderr.
"""

import os
import shlex
import signal
import subprocess
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import List, Optional, Sequence

from trac.config import ChoiceOption, IntOption, Option
from trac.core import Component

from tracnotify.delivery.transports.base import (
    SendResult,
    Transport,
    TransportKind,
    register,
)
from tracnotify.delivery.transports.options import SECTION, choice, get
from tracnotify.outbox import OutgoingMessage

MAX_ERROR = 1000
SENDMAIL_RECIPIENTS = ('envelope', 'headers')
DEFAULT_SENDMAIL_ARGS = '-f {sender}'


class SendmailOptions(Component):
    """Options of `[notification]` for `mail_transport = sendmail` (Trac's
    own `sendmail_path` is read, not declared again)."""

    sendmail_args = Option(SECTION, 'sendmail_args', DEFAULT_SENDMAIL_ARGS,
        """Arguments given to `sendmail_path` after `-i` (which keeps a line
        holding a single "." from ending the message). `{sender}` is
        replaced by the envelope sender. Split like a shell would, but no
        shell runs. (tracnotify)""")

    sendmail_recipients = ChoiceOption(SECTION, 'sendmail_recipients',
                                       SENDMAIL_RECIPIENTS,
        """`envelope`: each message's recipient is given on the command
        line (after `--`), so Bcc copies are delivered although no header
        names them. `headers`: `-t` is passed and the program reads the
        recipients from To/Cc; only copies whose headers name exactly
        their own recipient can be sent that way (Bcc copies and
        `use_public_cc` copies are refused). (tracnotify)""")

    sendmail_timeout = IntOption(SECTION, 'sendmail_timeout', 30,
        """Seconds the sendmail program may take for one message before it
        is killed and the message retried later. (tracnotify)""")


@dataclass
class SendmailSettings:
    """How to run the sendmail program."""

    path: str = 'sendmail'
    args: List[str] = field(default_factory=lambda: ['-f', '{sender}'])
    recipients: str = 'envelope'
    timeout: int = 30


def read_settings(env, errors: List[str]) -> Optional[SendmailSettings]:
    """The sendmail options of *env*, or None when sendmail cannot run as
    configured (*errors* says why)."""
    config = env.config
    s = SendmailSettings()
    s.path = get(config, 'sendmail_path', 'sendmail') or 'sendmail'
    raw = get(config, 'sendmail_args', DEFAULT_SENDMAIL_ARGS)
    try:
        s.args = shlex.split(raw)
    except ValueError as e:
        errors.append('[notification] sendmail_args = %r cannot be split '
                      '(%s); no mail is sent until it is fixed' % (raw, e))
        return None
    for arg in s.args:
        if '{' in arg.replace('{sender}', '') or \
                '}' in arg.replace('{sender}', ''):
            errors.append('[notification] sendmail_args: %r has an unknown '
                          'placeholder (only {sender} is known); no mail is '
                          'sent until it is fixed' % arg)
            return None
    s.recipients = choice(config, 'sendmail_recipients', SENDMAIL_RECIPIENTS,
                          'envelope', errors)
    s.timeout = _timeout(get(config, 'sendmail_timeout'), errors)
    return s


def _timeout(raw: str, errors: List[str]) -> int:
    try:
        timeout = int(raw) if raw else 30
        if not 1 <= timeout <= 3600:
            raise ValueError
    except ValueError:
        errors.append('[notification] sendmail_timeout = %r is not a number '
                      'of seconds (1..3600); using 30' % raw)
        return 30
    return timeout


def native_line_ends(data: bytes) -> bytes:
    """CRLF (wire form) to LF, the line end local mail programs expect."""
    return data.replace(b'\r\n', b'\n')


def header_recipients(data: bytes) -> List[str]:
    """Lower-cased addresses of the To and Cc headers of *data*."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(data)
    fields = [str(v) for name in ('To', 'Cc')
              for v in headers.get_all(name, [])]
    return [addr.lower() for _name, addr in getaddresses(fields) if addr]


def _tail(text: bytes) -> str:
    text = text.decode('utf-8', 'replace').strip()
    return text[-MAX_ERROR:] if len(text) > MAX_ERROR else text


class SendmailTransport(Transport):
    """Runs the sendmail program once per message."""

    name = 'sendmail'

    def __init__(self, settings: SendmailSettings, log=None) -> None:
        self.settings = settings
        self.log = log

    def describe(self) -> str:
        recipient = [] if self.headers_mode else ['--', '<recipient>']
        return 'sendmail: %s' % ' '.join(self.command('{sender}') + recipient)

    @property
    def headers_mode(self) -> bool:
        return self.settings.recipients == 'headers'

    def command(self, sender: str,
                recipient: Optional[str] = None) -> List[str]:
        """The argument list for one message."""
        s = self.settings
        argv = [s.path, '-i'] + (['-t'] if self.headers_mode else [])
        argv += [arg.replace('{sender}', sender) for arg in s.args]
        if recipient is not None and not self.headers_mode:
            argv += ['--', recipient]
        return argv

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        return [self._send_one(m) for m in messages]

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        if self.headers_mode:
            refused = self._check_headers(message)
            if refused:
                return refused
        argv = self.command(message.sender, message.recipient)
        if self.log is not None:
            self.log.debug('tracnotify: running %s', argv)
        return self.run(argv, native_line_ends(message.data))

    def _check_headers(self, message: OutgoingMessage
                       ) -> Optional[SendResult]:
        named = set(header_recipients(message.data))
        if message.recipient.lower() not in named:
            return SendResult.dead(
                'sendmail_recipients = headers cannot deliver this copy: '
                'its headers do not name %s (a Bcc copy); use '
                'sendmail_recipients = envelope' % message.recipient)
        others = sorted(named - {message.recipient.lower()})
        if others:
            return SendResult.dead(
                'sendmail_recipients = headers would also send this copy for '
                '%s to %s (use_public_cc); use sendmail_recipients = '
                'envelope' % (message.recipient, ', '.join(others)))
        return None

    def run(self, argv: List[str], data: bytes) -> SendResult:
        """Run *argv* with *data* on stdin; the outcome as a result."""
        timeout = self.settings.timeout
        try:
            child = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     close_fds=True, start_new_session=True)
        except OSError as e:
            return SendResult.retry('cannot run %s: %s' % (
                argv[0], e.strerror or e))
        try:
            out, err = child.communicate(data, timeout=timeout)
        except subprocess.TimeoutExpired:
            err = self._kill(child)
            return SendResult.retry('%s did not finish within %d s and was '
                                    'killed%s' % (argv[0], timeout,
                                                  ': ' + err if err else ''))
        if child.returncode == 0:
            return SendResult.sent()
        if child.returncode < 0:
            status = 'was killed by signal %d' % -child.returncode
        else:
            status = 'exited with status %d' % child.returncode
        detail = _tail(err) or _tail(out)
        return SendResult.retry('%s %s%s' % (argv[0], status,
                                              ': ' + detail if detail else ''))

    @staticmethod
    def _kill(child: subprocess.Popen) -> str:
        """Kill *child* and its process group; what it wrote on stderr."""
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            child.kill()
        try:
            _out, err = child.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            # a descendant left the group and still holds the pipes
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream:
                    stream.close()
            child.wait()
            return ''
        return _tail(err or b'')


register(TransportKind(
    'sendmail', 20,
    build=lambda settings, config, log: SendmailTransport(settings, log),
    read=read_settings, component=SendmailOptions,
    # its errors say that no mail is sent: only when it is the one chosen
    read_when_chosen=True))
