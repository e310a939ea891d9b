"""The options of admin alerts, declared once and read typed.

They live in ``[notification]`` beside tracnotify's other options (so that
``[[TracIni(notification)]]`` lists them) but are declared and read here,
in the alerts' own room.  :func:`load_alert_settings` never raises: a bad
value is replaced by its default and named in :attr:`AlertSettings.errors`.
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from trac.config import FloatOption, ListOption, Option
from trac.core import Component

from tracnotify.config import SECTION, _Reader

#: the optional events admins may be told about (``alert_events``)
USER_CREATED = 'user_created'
PERMISSION_CHANGED = 'permission_changed'
ALERT_EVENTS = (USER_CREATED, PERMISSION_CHANGED)
#: ``alert_to = log``: alerts are written to the log only
LOG_ONLY = 'log'
#: the transports a fallback may name (``smtp`` needs alert_smtp_server)
FALLBACKS = ('smtp', 'sendmail', 'directory', 'database', 'console')
DEFAULT_AFTER = 30.0
DEFAULT_INTERVAL = 60.0
#: a week, in minutes: the longest alert_after and alert_interval
MAX_MINUTES = 7 * 24 * 60.0

_host_port_re = re.compile(r'^(?P<host>[^\s:]+|\[[0-9A-Fa-f:.]+\])'
                           r'(?::(?P<port>\d{1,5}))?$')


class AlertOptions(Component):
    """Options of `[notification]` for the alerts to admins."""

    alert_after = FloatOption(SECTION, 'alert_after', DEFAULT_AFTER,
        """Minutes without a single delivered message, while mail is
        waiting, after which the admins get an alert (decimals allowed,
        e.g. `0.5`). `0` turns these alerts off; dead messages and
        configuration errors still alert. (tracnotify)""")

    alert_interval = FloatOption(SECTION, 'alert_interval', DEFAULT_INTERVAL,
        """Minutes between two alerts, at least: while delivery keeps
        failing an alert is repeated after this time, never sooner. The
        mail saying that delivery works again is sent at once.
        (tracnotify)""")

    alert_to = ListOption(SECTION, 'alert_to', '', doc=
        """Who gets alerts: e-mail addresses or user names, comma
        separated. Empty: every user with `TRAC_ADMIN` who has an e-mail
        address. `log`: alerts are only written to the log (they always
        are, as lines containing "alert"). (tracnotify)""")

    alert_fallback = Option(SECTION, 'alert_fallback', '',
        """How an alert leaves when the transport of ordinary mail fails
        (alerts never wait in the outbox): `sendmail`, `directory`,
        `database`, `console`, or `smtp` through `alert_smtp_server`.
        Empty: no second way; the alert is in the log. (tracnotify)""")

    alert_smtp_server = Option(SECTION, 'alert_smtp_server', '',
        """`host` or `host:port` of a second SMTP relay for
        `alert_fallback = smtp` (same TLS and login settings as
        `smtp_server`; port 25 by default). (tracnotify)""")

    alert_events = ListOption(SECTION, 'alert_events', '', doc=
        """Events the admins are also told about, by ordinary mail:
        `user_created` (an account registered, with AccountManager) and
        `permission_changed` (a permission granted or revoked, on the
        admin page or with trac-admin). Empty by default. (tracnotify)""")


@dataclass
class AlertSettings:
    """Validated alert settings."""

    #: seconds without a delivery (while mail waits) before an alert; 0: off
    after: float = DEFAULT_AFTER * 60
    #: seconds between two alerts, at least
    interval: float = DEFAULT_INTERVAL * 60
    #: addresses or user names; empty: the TRAC_ADMIN users
    to: Tuple[str, ...] = ()
    log_only: bool = False
    fallback: str = ''
    #: ``(host, port)`` of the second relay (``fallback == 'smtp'``)
    fallback_server: Optional[Tuple[str, int]] = None
    events: Tuple[str, ...] = ()
    errors: List[str] = field(default_factory=list)


def _split(value: str) -> List[str]:
    return [v for v in re.split(r'[,\s]+', value or '') if v]


def parse_host_port(value: str) -> Optional[Tuple[str, int]]:
    """``host[:port]`` -> ``(host, port)``; None when it is not one."""
    match = _host_port_re.match(value.strip())
    if not match:
        return None
    port = int(match.group('port') or 25)
    if not 0 < port < 65536:
        return None
    return match.group('host').strip('[]'), port


def load_alert_settings(env, ini=None) -> AlertSettings:
    """Read and validate the alert options of *env* (or of *ini*, a
    configuration read afresh); never raises."""
    r = _Reader(env.config if ini is None else ini)
    s = AlertSettings()
    s.after = r.number('alert_after', DEFAULT_AFTER, 0.0, MAX_MINUTES) * 60
    s.interval = r.number('alert_interval', DEFAULT_INTERVAL, 0.0,
                          MAX_MINUTES) * 60
    to = _split(r.text('alert_to'))
    s.log_only = [t.lower() for t in to] == [LOG_ONLY]
    s.to = () if s.log_only else tuple(to)
    s.fallback = r.choice('alert_fallback', FALLBACKS, '') \
        if r.text('alert_fallback') else ''
    if s.fallback == 'smtp':
        raw = r.text('alert_smtp_server')
        s.fallback_server = parse_host_port(raw) if raw else None
        if s.fallback_server is None:
            r.errors.append('[notification] alert_fallback = smtp needs '
                            'alert_smtp_server = host[:port] (not %r); no '
                            'fallback' % raw)
            s.fallback = ''
    events = [e.lower() for e in _split(r.text('alert_events'))]
    unknown = [e for e in events if e not in ALERT_EVENTS]
    if unknown:
        r.errors.append('[notification] alert_events: unknown %s (known: '
                        '%s); ignored' % (', '.join(unknown),
                                          ', '.join(ALERT_EVENTS)))
    s.events = tuple(e for e in ALERT_EVENTS if e in events)
    s.errors = r.errors
    return s
