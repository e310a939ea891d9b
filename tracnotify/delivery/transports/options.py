"""The options that choose and configure the way of sending.

``[notification] mail_transport`` picks the transport by name; when it is
empty, Trac's own ``email_sender`` decides (``SmtpEmailSender`` -> smtp,
``SendmailEmailSender`` -> sendmail with Trac's ``sendmail_path``).  Those
two Trac options are read here, not declared again.

:func:`load_transport_options` never raises: a bad value is replaced by its
default (or makes the transport unusable) and named in
:attr:`TransportOptions.errors`.
"""

import os
import shlex
from dataclasses import dataclass, field
from typing import List, Optional

from trac.config import ChoiceOption, IntOption, Option
from trac.core import Component

SECTION = 'notification'
TRANSPORTS = ('smtp', 'sendmail', 'directory', 'database', 'console')
SENDMAIL_RECIPIENTS = ('envelope', 'headers')
CONSOLE_OUTPUTS = ('log', 'stdout', 'stderr')
EMAIL_SENDERS = {'SmtpEmailSender': 'smtp', 'SendmailEmailSender': 'sendmail'}

DEFAULT_SENDMAIL_ARGS = '-f {sender}'
DEFAULT_MAIL_DIRECTORY = 'mail'
DEFAULT_MAIL_DATABASE = 'db/tracnotify-mail.sqlite'


class TransportOptions(Component):
    """Options of `[notification]` that choose how tracnotify sends mail."""

    mail_transport = Option(SECTION, 'mail_transport', '',
        """How mail leaves: `smtp` (through `smtp_server`), `sendmail`
        (piped to `sendmail_path`), `directory` (one `.eml` file per message
        in `mail_directory`), `database` (appended to the SQLite file
        `mail_database`, which an external relay drains) or `console`
        (written to the log or stdout, never sent: for development).
        Empty: follow Trac's `email_sender` (`SendmailEmailSender` means
        `sendmail`, anything else `smtp`). (tracnotify)""")

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

    mail_directory = Option(SECTION, 'mail_directory',
                            DEFAULT_MAIL_DIRECTORY,
        """Folder that receives one `.eml` file per message with
        `mail_transport = directory`. Relative to the environment
        directory; created when missing. (tracnotify)""")

    mail_database = Option(SECTION, 'mail_database', DEFAULT_MAIL_DATABASE,
        """SQLite file whose `tracnotify_mail` table receives the messages
        with `mail_transport = database`, for an external relay such as
        `contrib/tracnotify-relay.py`. Relative to the environment
        directory; created when missing. (tracnotify)""")

    console_output = ChoiceOption(SECTION, 'console_output', CONSOLE_OUTPUTS,
        """Where `mail_transport = console` writes each message: the Trac
        `log` (level INFO), `stdout` or `stderr`. (tracnotify)""")


@dataclass
class SendmailSettings:
    """How to run the sendmail program."""

    path: str = 'sendmail'
    args: List[str] = field(default_factory=lambda: ['-f', '{sender}'])
    recipients: str = 'envelope'
    timeout: int = 30


@dataclass
class TransportSettings:
    """Validated transport settings; ``usable`` is False when the chosen
    transport cannot work as configured (``errors`` says why)."""

    name: str = 'smtp'
    sendmail: SendmailSettings = field(default_factory=SendmailSettings)
    directory: str = ''
    database: str = ''
    console_output: str = 'log'
    usable: bool = True
    errors: List[str] = field(default_factory=list)


def _get(config, name: str, default: str = '') -> str:
    value = config.get(SECTION, name, default)
    return value.strip() if isinstance(value, str) else default


def _choice(config, name: str, choices, default: str,
            errors: List[str]) -> str:
    raw = _get(config, name).lower()
    if not raw:
        return default
    if raw not in choices:
        errors.append('[notification] %s = %r is not one of %s; using %s'
                      % (name, raw, ', '.join(choices), default))
        return default
    return raw


def _path(env, config, name: str, default: str) -> str:
    value = os.path.expanduser(_get(config, name) or default)
    if not os.path.isabs(value):
        value = os.path.join(env.path, value)
    return os.path.normpath(value)


def choose_transport(config, errors: List[str]) -> str:
    """The transport name that ``[notification]`` selects."""
    raw = _get(config, 'mail_transport').lower()
    if raw:
        if raw in TRANSPORTS:
            return raw
        errors.append('[notification] mail_transport = %r is not one of %s; '
                      'using smtp' % (raw, ', '.join(TRANSPORTS)))
        return 'smtp'
    sender = _get(config, 'email_sender', 'SmtpEmailSender')
    if sender in EMAIL_SENDERS:
        return EMAIL_SENDERS[sender]
    errors.append('[notification] email_sender = %r is not supported by '
                  'tracnotify (set mail_transport); using smtp' % sender)
    return 'smtp'


def _sendmail(config, errors: List[str]) -> Optional[SendmailSettings]:
    s = SendmailSettings()
    s.path = _get(config, 'sendmail_path', 'sendmail') or 'sendmail'
    raw = _get(config, 'sendmail_args', DEFAULT_SENDMAIL_ARGS)
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
    s.recipients = _choice(config, 'sendmail_recipients', SENDMAIL_RECIPIENTS,
                           'envelope', errors)
    raw = _get(config, 'sendmail_timeout')
    try:
        s.timeout = int(raw) if raw else 30
        if not 1 <= s.timeout <= 3600:
            raise ValueError
    except ValueError:
        errors.append('[notification] sendmail_timeout = %r is not a number '
                      'of seconds (1..3600); using 30' % raw)
        s.timeout = 30
    return s


def load_transport_options(env) -> TransportSettings:
    """Read and validate the transport options of *env*; never raises."""
    config = env.config
    errors: List[str] = []
    t = TransportSettings(errors=errors)
    t.name = choose_transport(config, errors)
    t.directory = _path(env, config, 'mail_directory', DEFAULT_MAIL_DIRECTORY)
    t.database = _path(env, config, 'mail_database', DEFAULT_MAIL_DATABASE)
    t.console_output = _choice(config, 'console_output', CONSOLE_OUTPUTS,
                               'log', errors)
    if t.name == 'sendmail':
        sendmail = _sendmail(config, errors)
        t.usable = sendmail is not None
        t.sendmail = sendmail or t.sendmail
    return t
