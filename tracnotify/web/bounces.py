"""Administration > Notification > Bouncing addresses, and what a user
and ``notify status`` are told about bounces.

Thin glue over :mod:`tracnotify.inbound.bounce_record`.  The panel needs
``TRAC_ADMIN``; its one action (reset: forget an address's bounces and
mail it again) is a POST with Trac's form token.
"""

from typing import List, Optional

from trac.admin.api import IAdminPanelProvider
from trac.core import Component, implements
from trac.util.datefmt import format_datetime, from_utimestamp
from trac.web.api import HTTPBadRequest
from trac.web.chrome import add_notice, add_stylesheet, add_warning

from tracnotify.i18n.domain import _
from tracnotify.inbound.bounce_record import (
    bounce_state,
    bouncing_addresses,
    load_bounce_settings,
    reset,
)

CATEGORY = 'notification'
PAGE = 'bounces'
TEMPLATE = 'tracnotify_admin_bounces.html'
#: the last messages to the bounce address the panel lists
RECEIVED_SHOWN = 20


class BouncesAdminPanel(Component):
    """Administration > Notification > Bouncing addresses (``TRAC_ADMIN``)."""

    implements(IAdminPanelProvider)

    def get_admin_panels(self, req):
        if 'TRAC_ADMIN' in req.perm('admin', '%s/%s' % (CATEGORY, PAGE)):
            yield CATEGORY, _('Notification'), PAGE, _('Bouncing addresses')

    def render_admin_panel(self, req, cat, page, path_info):
        req.perm('admin', '%s/%s' % (CATEGORY, PAGE)).require('TRAC_ADMIN')
        if req.method == 'POST':
            if req.args.get('__FORM_TOKEN') != req.form_token:
                raise HTTPBadRequest(_('Missing or invalid form token. '
                                       'Do you have cookies enabled?'))
            self._reset(req)
            req.redirect(req.href.admin(CATEGORY, PAGE))
        add_stylesheet(req, 'tracnotify/admin.css')
        settings = load_bounce_settings(self.env)
        rows = [{'address': b.address, 'hard': b.hard, 'soft': b.soft,
                 'score': b.score, 'total': b.total,
                 'disabled': b.disabled, 'status': b.last_status,
                 'detail': b.last_detail,
                 'when': format_datetime(from_utimestamp(b.last),
                                         '%Y-%m-%d %H:%M', tzinfo=req.tz)
                 if b.last else ''}
                for b in bouncing_addresses(self.env, settings)]
        received = [{'when': format_datetime(from_utimestamp(at),
                                             '%Y-%m-%d %H:%M', tzinfo=req.tz)
                     if at else '', 'outcome': outcome, 'reason': reason,
                     'sender': sender}
                    for at, outcome, reason, sender in self.env.db_query("""
                        SELECT received, outcome, reason, sender
                        FROM tracnotify_inbound WHERE kind='bounce'
                        ORDER BY id DESC""")[:RECEIVED_SHOWN]]
        return TEMPLATE, {'rows': rows, 'panel': PAGE, 'received': received,
                          'threshold': settings.threshold,
                          'days': settings.days}, {'domain': 'tracnotify'}

    def _reset(self, req) -> None:
        if 'reset' not in req.args:
            raise HTTPBadRequest(_('Unknown action'))
        selected = req.args.getlist('sel')
        if not selected:
            add_warning(req, _('No address selected.'))
            return
        n = sum(reset(self.env, a) for a in selected)
        self.log.info('tracnotify: %s reset the bounces of %s',
                      req.authname, ', '.join(selected))
        add_notice(req, _('%(n)d address(es) reset: their bounces are '
                          'forgotten and they get mail again.', n=n))


def preferences_notice(env, address: Optional[str]) -> str:
    """The line Preferences shows about the bounces of the user's
    *address* ('' when there are none)."""
    state = bounce_state(env, address or '')
    if state is None:
        return ''
    if state.disabled:
        return _('Mail to %(address)s bounced %(n)d time(s), the last on '
                 '%(when)s (%(status)s): it gets no more mail from this '
                 'Trac. Correct your email address above, or ask an '
                 'administrator to reset it.', address=state.address,
                 n=state.total, when=_day(state.last),
                 status=state.last_status or '?')
    return _('Mail to %(address)s bounced %(n)d time(s), the last on '
             '%(when)s (%(status)s).', address=state.address,
             n=state.total, when=_day(state.last),
             status=state.last_status or '?')


def status_lines(env) -> List[str]:
    """What ``notify status`` says about bouncing addresses."""
    rows = bouncing_addresses(env)
    if not rows:
        return []
    disabled = [r for r in rows if r.disabled]
    lines = [_('Bouncing addresses: %(n)d, %(disabled)d disabled',
               n=len(rows), disabled=len(disabled))]
    for r in rows[:20]:
        state = _('disabled') if r.disabled else \
            _('score %(score)d', score=r.score)
        lines.append('  %s  %s, %s' % (r.address, state, _(
            'last %(when)s (%(status)s)', when=_day(r.last),
            status=r.last_status or '?')))
    if len(rows) > 20:
        lines.append('  ' + _('... and %(n)d more', n=len(rows) - 20))
    return lines


def _day(us: int) -> str:
    return format_datetime(from_utimestamp(us), '%Y-%m-%d') if us else '?'
