"""The alert mail: what is wrong (or that it is right again), in the
house style (:mod:`tracnotify.mail.chrome`), in the admin's language.

``X-Trac-Notification-Type`` is ``alert`` for a problem and
``alert_recovered`` when delivery works again (``alert_event`` for the
optional notices of ``alert_events``).
"""

import time
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import List, Optional, Tuple

from tracnotify.alerts.detect import Health
from tracnotify.config import NotifyConfig
from tracnotify.i18n.domain import _, ngettext
from tracnotify.i18n.language import mail_language
from tracnotify.mail.chrome import (
    clean_header_text,
    signature,
    standard_headers,
    subject_prefix,
)
from tracnotify.mail.message import (
    AddressError,
    MailHeaders,
    Recipient,
    build_copies,
    encode_shared_part,
)
from tracnotify.outbox import OutgoingMessage

ALERT = 'alert'
RECOVERED = 'alert_recovered'
EVENT = 'alert_event'
REASON = 'admin'
REALM = 'notification'


@dataclass
class Problems:
    """What one alert reports; empty parts are left out."""

    #: the outbox snapshot, when delivery is failing (or recovered)
    health: Optional[Health] = None
    stalled: bool = False
    config_errors: List[str] = field(default_factory=list)

    @property
    def dead(self) -> int:
        return self.health.dead_count if self.health else 0

    def __bool__(self) -> bool:
        return bool(self.stalled or self.dead or self.config_errors)


def when(us: Optional[int]) -> str:
    """A time for the mail, in UTC (the admins may be anywhere)."""
    if not us:
        return '-'
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(us / 1e6))


def _minutes(us: int) -> str:
    minutes = us / 60e6
    return ('%.1f' % minutes) if minutes < 10 else '%d' % round(minutes)


def queue_url(env) -> str:
    """The admin's Mail Queue page."""
    return env.abs_href.admin('notification', 'queue')


def alert_text(env, problems: Problems, interval_us: int) -> Tuple[str, str]:
    """``(title, body)`` of an alert, in the active language."""
    h = problems.health
    lines: List[str] = []
    if problems.stalled and h is not None:
        title = _('Alert: mail delivery is failing')
        failing_since = max(h.oldest_waiting or h.now, h.last_sent or 0)
        lines += [_('No mail of %(project)s could be delivered for '
                    '%(minutes)s minutes.', project=env.project_name,
                    minutes=_minutes(h.now - failing_since)),
                  ngettext('%(num)d message is waiting (the oldest since '
                           '%(when)s).',
                           '%(num)d messages are waiting (the oldest since '
                           '%(when)s).', h.waiting,
                           when=when(h.oldest_waiting)),
                  _('Last delivery: %(when)s', when=when(h.last_sent))]
        if h.last_error:
            lines.append(_('Last error (%(when)s, to %(to)s): %(error)s',
                           when=when(h.last_error[0]), to=h.last_error[1],
                           error=(h.last_error[2] or '').splitlines()[0]
                           if h.last_error[2] else ''))
        lines.append('')
    elif problems.dead:
        title = _('Alert: mail was given up')
    else:
        title = _('Alert: configuration errors')
    if problems.dead and h is not None:
        lines.append(ngettext('%(num)d message was given up (dead):',
                              '%(num)d messages were given up (dead):',
                              h.dead_count))
        for _id, recipient, error in h.dead:
            lines.append('  #%s %s: %s' % (_id, recipient,
                                           (error or '').splitlines()[0]
                                           if error else ''))
        if h.dead_count > len(h.dead):
            lines.append('  ...')
        lines.append('')
    if problems.config_errors:
        lines.append(_('Configuration errors:'))
        lines += ['  %s' % e for e in problems.config_errors]
        lines.append('')
    lines += [_('The mail queue: %(url)s', url=queue_url(env)),
              _('No further alert for %(minutes)s minutes.',
                minutes=_minutes(interval_us))]
    if problems.stalled:
        lines.append(_('A mail follows when delivery works again.'))
    return str(title), '\n'.join(str(line) for line in lines)


def recovered_text(env, h: Health, since: int) -> Tuple[str, str]:
    """``(title, body)`` of the mail that says delivery works again."""
    title = _('Alert over: mail delivery works again')
    lines = [_('Mail of %(project)s is delivered again (failing since '
               '%(since)s, last delivery %(when)s).',
               project=env.project_name, since=when(since),
               when=when(h.last_sent)),
             ngettext('%(num)d message is still waiting.',
                      '%(num)d messages are still waiting.', h.waiting),
             '',
             _('The mail queue: %(url)s', url=queue_url(env))]
    return str(title), '\n'.join(str(line) for line in lines)


def build_mail(env, config: NotifyConfig, kind: str, address: str,
               title: str, body: str) -> OutgoingMessage:
    """One alert mail to *address*, ready for a transport (it never waits
    in the outbox: ``id`` 0)."""
    project = env.project_name
    subject = clean_header_text(('%s %s' % (subject_prefix(env, config),
                                            title)).strip())
    domain = config.envelope_from.rpartition('@')[2] or 'localhost'
    msgid = make_msgid('tracnotify.alert', domain=domain)
    headers = MailHeaders(
        from_name=config.smtp_from_name or project,
        from_addr=config.envelope_from, reply_to=config.smtp_replyto,
        subject=subject, msgid=msgid, root_msgid=None, date=time.time(),
        extra=standard_headers(env, config, kind, realm=REALM))
    text = '\n'.join([body, ''] + signature(env))
    shared = encode_shared_part(headers, text, config)
    (_r, data), = build_copies(shared, [Recipient(address, REASON)], config)
    return OutgoingMessage(id=0, event_id=0, ticket=0, kind=kind,
                           msgid=msgid, sender=config.envelope_from,
                           recipient=address, reason=REASON,
                           subject=subject, message=data, attempts=0)


def build_for(env, config: NotifyConfig, kind: str, address: str,
              language: str, render) -> Optional[OutgoingMessage]:
    """The mail of *kind* to *address*, its text made by ``render()``
    with *language* active; None (logged) for an address that cannot be
    written in a header."""
    with mail_language(env, language):
        title, body = render()
    try:
        return build_mail(env, config, kind, address, title, body)
    except AddressError as e:
        env.log.warning('tracnotify: no %s mail to %r: %s', kind, address, e)
        return None


def build_all(env, config: NotifyConfig, kind: str, admins,
              render) -> List[OutgoingMessage]:
    """The mail of *kind* to each of *admins*, in their languages."""
    built = [build_for(env, config, kind, a.address, a.language, render)
             for a in admins]
    return [m for m in built if m is not None]
