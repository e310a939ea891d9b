"""Ways of sending: one small class each, all with the same interface.

``transport.send(messages) -> [SendResult]``, one result per message, in
order.  A transport never raises for a delivery problem: it reports it.
``[notification] mail_transport`` chooses one by name (see
:mod:`tracnotify.transports.options` and ``docs/transports.md``).
"""

import threading
from typing import List, Sequence

from tracnotify.delivery.transports.base import SendResult, Transport  # noqa: F401
from tracnotify.delivery.transports.options import (  # noqa: F401 (registers options)
    TransportOptions,
    TransportSettings,
    load_transport_options,
)
from tracnotify.outbox import OutgoingMessage

_logged = set()
_logged_lock = threading.Lock()


class UnusableTransport(Transport):
    """Stands in for a transport that cannot work as configured: every
    message waits (is retried) with the configuration error as its error."""

    def __init__(self, name: str, errors: List[str]) -> None:
        self.name = name
        self.error = '; '.join(errors) or 'transport %s is unusable' % name

    def describe(self) -> str:
        return '%s (misconfigured: %s)' % (self.name, self.error)

    def send(self, messages: Sequence[OutgoingMessage]) -> List[SendResult]:
        return [SendResult.retry(self.error) for _m in messages]


def _log_once(env, errors: List[str]) -> None:
    for error in errors:
        key = (getattr(env, 'path', None), error)
        with _logged_lock:
            if key in _logged:
                continue
            _logged.add(key)
        env.log.warning('tracnotify: %s', error)


def build_transport(settings: TransportSettings, config, log=None
                    ) -> Transport:
    """The transport *settings* describe (*config*: the NotifyConfig)."""
    if not settings.usable:
        return UnusableTransport(settings.name, settings.errors)
    if settings.name == 'sendmail':
        from tracnotify.delivery.transports.sendmail import SendmailTransport
        return SendmailTransport(settings.sendmail, log)
    if settings.name == 'directory':
        from tracnotify.delivery.transports.directory import DirectoryTransport
        return DirectoryTransport(settings.directory)
    if settings.name == 'database':
        from tracnotify.delivery.transports.database import DatabaseTransport
        return DatabaseTransport(settings.database)
    if settings.name == 'console':
        from tracnotify.delivery.transports.console import ConsoleTransport
        return ConsoleTransport(settings.console_output, log)
    from tracnotify.delivery.transports.smtp import SmtpTransport
    return SmtpTransport(config)


def create_transport(config, env=None) -> Transport:
    """The transport that ``[notification]`` selects.

    Without *env* only the NotifyConfig is known: SMTP.  Never raises for a
    bad option; problems are logged once and, when the transport cannot
    work, become the error of every message.
    """
    if env is None:
        from tracnotify.delivery.transports.smtp import SmtpTransport
        return SmtpTransport(config)
    settings = load_transport_options(env)
    _log_once(env, settings.errors)
    return build_transport(settings, config, env.log)
