"""The option that chooses the way of sending, and the reading of every
registered transport's own options.

``[notification] mail_transport`` picks the transport by name; when it is
empty, Trac's own ``email_sender`` decides (``SmtpEmailSender`` -> smtp,
``SendmailEmailSender`` -> sendmail with Trac's ``sendmail_path``).  Those
two Trac options are read here, not declared again.  Each transport
declares and reads its own options in its module (see
:class:`~tracnotify.delivery.transports.base.TransportKind`).

:func:`load_transport_options` never raises: a bad value is replaced by its
default (or makes the transport unusable) and named in
:attr:`TransportSettings.errors`.
"""

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from trac.config import Option
from trac.core import Component

from tracnotify.delivery.transports.base import kind_named, registered

SECTION = 'notification'
EMAIL_SENDERS = {'SmtpEmailSender': 'smtp', 'SendmailEmailSender': 'sendmail'}


class TransportOptions(Component):
    """The option of `[notification]` that chooses how tracnotify sends."""

    mail_transport = Option(SECTION, 'mail_transport', '',
        """How mail leaves: `smtp` (through `smtp_server`), `sendmail`
        (piped to `sendmail_path`), `directory` (one `.eml` file per message
        in `mail_directory`), `database` (appended to the SQLite file
        `mail_database`, which an external relay drains) or `console`
        (written to the log or stdout, never sent: for development).
        Empty: follow Trac's `email_sender` (`SendmailEmailSender` means
        `sendmail`, anything else `smtp`). (tracnotify)""")


@dataclass
class TransportSettings:
    """Validated transport settings; ``usable`` is False when the chosen
    transport cannot work as configured (``errors`` says why)."""

    name: str = 'smtp'
    #: each transport's own settings, by transport name (what its
    #: ``read`` returned)
    options: Dict[str, Any] = field(default_factory=dict)
    usable: bool = True
    errors: List[str] = field(default_factory=list)


def transport_names() -> Tuple[str, ...]:
    """The registered transports' names, in rank order."""
    return tuple(kind.name for kind in registered())


def option_components() -> List[type]:
    """The Components that declare the transport options."""
    return [TransportOptions] + [k.component for k in registered()
                                 if k.component is not None]


def get(config, name: str, default: str = '') -> str:
    """``[notification] name``, trimmed."""
    value = config.get(SECTION, name, default)
    return value.strip() if isinstance(value, str) else default


def choice(config, name: str, choices, default: str,
           errors: List[str]) -> str:
    """``[notification] name`` if one of *choices*, else *default* (and an
    error naming the value)."""
    raw = get(config, name).lower()
    if not raw:
        return default
    if raw not in choices:
        errors.append('[notification] %s = %r is not one of %s; using %s'
                      % (name, raw, ', '.join(choices), default))
        return default
    return raw


def env_path(env, name: str, default: str) -> str:
    """``[notification] name`` as a path, relative to the environment."""
    value = os.path.expanduser(get(env.config, name) or default)
    if not os.path.isabs(value):
        value = os.path.join(env.path, value)
    return os.path.normpath(value)


def choose_transport(config, errors: List[str]) -> str:
    """The transport name that ``[notification]`` selects."""
    names = transport_names()
    raw = get(config, 'mail_transport').lower()
    if raw:
        if raw in names:
            return raw
        errors.append('[notification] mail_transport = %r is not one of %s; '
                      'using smtp' % (raw, ', '.join(names)))
        return 'smtp'
    sender = get(config, 'email_sender', 'SmtpEmailSender')
    if sender in EMAIL_SENDERS:
        return EMAIL_SENDERS[sender]
    errors.append('[notification] email_sender = %r is not supported by '
                  'tracnotify (set mail_transport); using smtp' % sender)
    return 'smtp'


def load_transport_options(env) -> TransportSettings:
    """Read and validate the transport options of *env*; never raises."""
    errors: List[str] = []
    t = TransportSettings(errors=errors)
    t.name = choose_transport(env.config, errors)
    # the options of every transport are checked, then those read only
    # when chosen (their errors stop the sending)
    kinds = [k for k in registered() if k.read is not None]
    for kind in [k for k in kinds if not k.read_when_chosen] + \
            [k for k in kinds if k.read_when_chosen and k.name == t.name]:
        t.options[kind.name] = kind.read(env, errors)
        if kind.name == t.name and t.options[kind.name] is None:
            t.usable = False
    if kind_named(t.name) is None:
        t.usable = False
        errors.append('no transport named %s is registered' % t.name)
    return t
