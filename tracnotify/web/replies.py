"""Administration > Notification > Replies, and what ``notify status``
says about mail received.

Thin glue over :mod:`tracnotify.inbound.record`: the replies received
(taken, refused with their reason, dropped as automatic), newest first.
Read-only; it needs ``TRAC_ADMIN``.  Bounces have their own panel
(:mod:`tracnotify.web.bounces`).
"""

from typing import List

from trac.admin.api import IAdminPanelProvider
from trac.core import Component, implements
from trac.util.datefmt import format_datetime, from_utimestamp
from trac.web.api import HTTPBadRequest
from trac.web.chrome import add_stylesheet, add_warning

from tracnotify.i18n.domain import _
from tracnotify.inbound import record
from tracnotify.inbound.options import load_reply_config
from tracnotify.inbound.tokens import now_us

CATEGORY = 'notification'
PAGE = 'replies'
TEMPLATE = 'tracnotify_admin_replies.html'
FILTERS = ('all', 'taken', 'refused', 'dropped', 'failed')
LIMIT = 200
DAY_US = 86400 * 1000000


class RepliesAdminPanel(Component):
    """Administration > Notification > Replies (``TRAC_ADMIN``)."""

    implements(IAdminPanelProvider)

    def get_admin_panels(self, req):
        if 'TRAC_ADMIN' in req.perm('admin', '%s/%s' % (CATEGORY, PAGE)):
            yield CATEGORY, _('Notification'), PAGE, _('Replies')

    def render_admin_panel(self, req, cat, page, path_info):
        req.perm('admin', '%s/%s' % (CATEGORY, PAGE)).require('TRAC_ADMIN')
        if req.method == 'POST':        # nothing to post: never without a token
            if req.args.get('__FORM_TOKEN') != req.form_token:
                raise HTTPBadRequest(_('Missing or invalid form token. '
                                       'Do you have cookies enabled?'))
            req.redirect(req.href.admin(CATEGORY, PAGE))
        add_stylesheet(req, 'tracnotify/admin.css')
        shown = req.args.get('show', 'all')
        if shown not in FILTERS:
            shown = 'all'
        entries = [e for e in record.recent(
            self.env, LIMIT, None if shown == 'all' else shown)
            if e.kind != 'bounce']
        rows = [{'when': format_datetime(from_utimestamp(e.received),
                                         '%Y-%m-%d %H:%M', tzinfo=req.tz),
                 'kind': e.kind, 'outcome': e.outcome, 'reason': e.reason,
                 'sender': e.sender, 'ticket': e.ticket, 'sid': e.sid,
                 'subject': e.subject} for e in entries]
        config = load_reply_config(self.env)
        for error in config.errors:
            add_warning(req, error)
        return TEMPLATE, {'rows': rows, 'panel': PAGE, 'shown': shown,
                          'filters': FILTERS, 'limit': LIMIT,
                          'reply_address': config.reply_address,
                          'counts': reply_counts(self.env)}, \
            {'domain': 'tracnotify'}


def reply_counts(env, since: int = 0) -> dict:
    """``{outcome: n}`` of the messages that were not bounces."""
    out = {o: 0 for o in record.OUTCOMES}
    for (kind, outcome), n in record.counts(env, since).items():
        if kind != 'bounce' and outcome in out:
            out[outcome] += n
    return out


def status_lines(env) -> List[str]:
    """What ``notify status`` says about replies (nothing when replies
    are off and none ever came)."""
    day = reply_counts(env, now_us() - DAY_US)
    total = reply_counts(env)
    config = load_reply_config(env)
    errors = [_('Configuration: %(error)s', error=e) for e in config.errors]
    if not config.enabled and not any(total.values()):
        return errors
    lines = [_('Replies (24h): %(taken)d taken, %(refused)d refused, '
               '%(dropped)d dropped, %(failed)d failed', **day),
             _('Replies (all): %(taken)d taken, %(refused)d refused, '
               '%(dropped)d dropped, %(failed)d failed', **total)]
    last = [e for e in record.recent(env, 20, 'refused')
            if e.kind != 'bounce'][:1]
    if last:
        lines.append(_('Last refused reply (%(when)s, %(sender)s): '
                       '%(reason)s', when=format_datetime(
                           from_utimestamp(last[0].received), 'iso8601'),
                       sender=last[0].sender or '?',
                       reason=last[0].reason))
    return lines + errors
