"""How an alert leaves: never through the outbox (which may be what is
stuck), but straight through the configured transport, then through
``alert_fallback`` for those it could not take; the log always.
"""

from dataclasses import replace
from typing import List, Optional, Sequence

from trac.util.text import exception_to_unicode

from tracnotify.alerts.options import AlertSettings
from tracnotify.config import NotifyConfig
from tracnotify.delivery.transports import Transport, create_transport
from tracnotify.delivery.transports.base import kind_named
from tracnotify.delivery.transports.smtp import SmtpTransport
from tracnotify.outbox import OutgoingMessage

#: seconds an alert waits for an SMTP server at most (a black-holed relay
#: must not hold the delivery pass for long)
ALERT_SMTP_TIMEOUT = 10


def log_alert(env, kind: str, title: str, body: str) -> None:
    """The alert as one log line (level WARNING), whether or not any mail
    reaches anyone."""
    text = ' | '.join(line.strip() for line in body.splitlines()
                      if line.strip())
    env.log.warning('tracnotify: %s: %s: %s', kind, title, text)


def fallback_transport(env, config: NotifyConfig,
                       settings: AlertSettings) -> Optional[Transport]:
    """The second way out (``alert_fallback``); None if there is none."""
    if not settings.fallback:
        return None
    if settings.fallback == 'smtp':
        host, port = settings.fallback_server
        return SmtpTransport(replace(config, smtp_server=host,
                                     smtp_port=port,
                                     smtp_timeout=min(config.smtp_timeout,
                                                      ALERT_SMTP_TIMEOUT)))
    kind = kind_named(settings.fallback)
    if kind is None:
        return None
    errors: List[str] = []
    options = kind.read(env, errors) if kind.read is not None else None
    if errors or (kind.read is not None and options is None):
        env.log.warning('tracnotify: alert_fallback = %s cannot work: %s',
                        settings.fallback, '; '.join(errors))
        return None
    return kind.build(options, config, env.log)


def _try(env, transport: Transport, messages: Sequence[OutgoingMessage]
         ) -> List[bool]:
    try:
        results = transport.send(list(messages))
        return [r.ok for r in results]
    except Exception as e:          # a transport must not raise; be sure
        env.log.error('tracnotify: alert via %s failed: %s',
                      transport.describe(), exception_to_unicode(e))
        return [False] * len(messages)
    finally:
        try:
            transport.close()
        except Exception:
            pass


def send_alert_mail(env, config: NotifyConfig, settings: AlertSettings,
                    messages: Sequence[OutgoingMessage]) -> List[str]:
    """Send *messages* now; returns, for each, the transport that took it
    ('' for none).  Never raises."""
    via = [''] * len(messages)
    if not messages:
        return via
    primary = create_transport(replace(
        config, smtp_timeout=min(config.smtp_timeout, ALERT_SMTP_TIMEOUT)),
        env)
    for i, ok in enumerate(_try(env, primary, messages)):
        if ok:
            via[i] = primary.describe()
    left = [i for i, v in enumerate(via) if not v]
    fallback = fallback_transport(env, config, settings) if left else None
    if fallback is not None:
        for i, ok in zip(left, _try(env, fallback,
                                    [messages[i] for i in left])):
            if ok:
                via[i] = fallback.describe()
    for message, how in zip(messages, via):
        if how:
            env.log.info('tracnotify: alert mail to %s sent via %s',
                         message.recipient, how)
        else:
            env.log.error('tracnotify: alert mail to %s could not be sent '
                          '(%s); it is only in this log', message.recipient,
                          primary.describe())
    return via
