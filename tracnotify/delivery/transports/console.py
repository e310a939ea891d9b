"""console: write messages to the log or stdout, never send them.

For development and demonstrations: every message is reported as sent
(so the outbox does not retry it) after it has been written out, with its
envelope, which no header carries for a Bcc copy.
"""

import logging
import sys
from typing import List, Optional, Sequence

from trac.config import ChoiceOption
from trac.core import Component

from tracnotify.delivery.transports.base import (
    SendResult,
    Transport,
    TransportKind,
    register,
)
from tracnotify.delivery.transports.options import SECTION, choice
from tracnotify.outbox import OutgoingMessage

RULE = '-' * 72
CONSOLE_OUTPUTS = ('log', 'stdout', 'stderr')


class ConsoleOptions(Component):
    """Options of `[notification]` for `mail_transport = console`."""

    console_output = ChoiceOption(SECTION, 'console_output', CONSOLE_OUTPUTS,
        """Where `mail_transport = console` writes each message: the Trac
        `log` (level INFO), `stdout` or `stderr`. (tracnotify)""")


def render(message: OutgoingMessage) -> str:
    """The envelope and the message as readable text (LF line ends)."""
    text = message.data.decode('utf-8', 'replace').replace('\r\n', '\n')
    return '%s\nEnvelope-From: %s\nEnvelope-To: %s\n\n%s%s\n' % (
        RULE, message.sender, message.recipient, text,
        '' if text.endswith('\n') else '\n') + RULE


class ConsoleTransport(Transport):
    """Writes each message to ``output``: log, stdout or stderr."""

    name = 'console'

    def __init__(self, output: str = 'log', log=None) -> None:
        self.output = output
        self.log = log or logging.getLogger('tracnotify')

    def describe(self) -> str:
        return 'console (%s, nothing is sent)' % self.output

    def _stream(self) -> Optional[object]:
        return {'stdout': sys.stdout, 'stderr': sys.stderr}.get(self.output)

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        return [self._write(m) for m in messages]

    def _write(self, message: OutgoingMessage) -> SendResult:
        text = render(message)
        stream = self._stream()
        if stream is None:
            self.log.info('tracnotify: console transport, message %s for %s '
                          '(not sent):\n%s', message.id, message.recipient,
                          text)
            return SendResult.sent()
        try:
            stream.write(text + '\n')
            stream.flush()
        except (OSError, ValueError) as e:
            return SendResult.retry('cannot write to %s: %s'
                                    % (self.output, e))
        return SendResult.sent()


register(TransportKind(
    'console', 50,
    build=lambda output, config, log: ConsoleTransport(output, log),
    read=lambda env, errors: choice(env.config, 'console_output',
                                    CONSOLE_OUTPUTS, 'log', errors),
    component=ConsoleOptions))
