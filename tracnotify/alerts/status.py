"""The alerts' state in words, for ``notify status``."""

from typing import List

from tracnotify.alerts import state as rows
from tracnotify.alerts.mail import when
from tracnotify.alerts.options import load_alert_settings
from tracnotify.alerts.recipients import alert_recipients
from tracnotify.config import NotifyConfig
from tracnotify.i18n.domain import _


def status_lines(env, config: NotifyConfig) -> List[str]:
    """Who gets alerts, whether delivery is said to be failing, when the
    last alert left, and the alert options that are wrong."""
    settings = load_alert_settings(env)
    admins = alert_recipients(env, config, settings)
    saved = rows.read_state(env)
    lines = [_('Alerts to: %(to)s', to=', '.join(a.address for a in admins)
               or _('the log only'))]
    opened = rows.as_int(saved[rows.OPEN_SINCE])
    if opened:
        lines.append(_('Alert open: delivery failing since %(when)s',
                       when=when(opened)))
    last = rows.as_int(saved[rows.LAST_SENT])
    if last:
        lines.append(_('Last alert: %(when)s', when=when(last)))
    lines += [_('Configuration: %(error)s', error=e) for e in settings.errors]
    return [str(line) for line in lines]
