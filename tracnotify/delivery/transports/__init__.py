"""Ways of sending: one small module each, all with the same interface.

``transport.send(messages) -> [SendResult]``, one result per message, in
order.  A transport never raises for a delivery problem: it reports it.
``[notification] mail_transport`` chooses one by name (see
:mod:`tracnotify.delivery.transports.options` and ``docs/transports.md``).

Every module of this package is imported below and registers its kind
(:func:`~tracnotify.delivery.transports.base.register`): a new way of
sending is one new module here, with its class, its options and one
``register(TransportKind(...))`` call.
"""

import importlib
import pkgutil
import threading
from typing import List, Sequence

from tracnotify.delivery.transports.base import (  # noqa: F401
    SendResult,
    Transport,
    kind_named,
)
from tracnotify.delivery.transports.options import (  # noqa: F401
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
    kind = kind_named(settings.name)
    if not settings.usable or kind is None:
        return UnusableTransport(settings.name, settings.errors)
    return kind.build(settings.options.get(settings.name), config, log)


def create_transport(config, env=None) -> Transport:
    """The transport that ``[notification]`` selects.

    Without *env* only the NotifyConfig is known: SMTP.  Never raises for a
    bad option; problems are logged once and, when the transport cannot
    work, become the error of every message.
    """
    if env is None:
        return kind_named('smtp').build(None, config, None)
    settings = load_transport_options(env)
    _log_once(env, settings.errors)
    return build_transport(settings, config, env.log)


def _import_transports() -> None:
    """Import every module of the package: each registers its transport."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module('%s.%s' % (__name__, module.name))


_import_transports()
