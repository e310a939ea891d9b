"""The Notification admin panels: settings, status, queue, test mail.

Thin Trac glue over plain modules: :mod:`tracnotify.admin_settings` (the
form), :mod:`tracnotify.stats` (the chart), :mod:`tracnotify.queue_admin`
(the queue) and :mod:`tracnotify.testsend` (the test mail).  Every panel
needs ``TRAC_ADMIN``; every POST must carry Trac's form token.
"""

from pkg_resources import resource_filename
from trac.admin.api import IAdminPanelProvider
from trac.core import Component, implements
from trac.util.datefmt import datetime_now, format_datetime, from_utimestamp
from trac.util.presentation import Paginator
from trac.util.text import exception_to_unicode
from trac.web.api import HTTPBadRequest
from trac.web.chrome import (
    ITemplateProvider,
    add_link,
    add_notice,
    add_script,
    add_stylesheet,
    add_warning,
    web_context,
)
from trac.wiki.formatter import format_to_html

from tracnotify import outbox
from tracnotify.config import load_config
from tracnotify.delivery.service import DeliveryService
from tracnotify.delivery.testmail import make_transport, send_test
from tracnotify.delivery.transports.options import load_transport_options
from tracnotify.i18n.domain import _
from tracnotify.outbox import maintenance as queue_admin
from tracnotify.outbox import stats
from tracnotify.web import settings_form as admin_settings

CATEGORY = 'notification'
PER_PAGE = 25
PANELS = ('settings', 'status', 'queue', 'test')
#: the Mail Queue filter that shows the sent-mail history
SENT = 'sent'


class NotifyAdminPanel(Component):
    """Administration > Notification: settings, status, queue, test mail."""

    implements(IAdminPanelProvider, ITemplateProvider)

    # IAdminPanelProvider

    def get_admin_panels(self, req):
        if 'TRAC_ADMIN' in req.perm('admin', CATEGORY + '/settings'):
            label = _('Notification')
            yield CATEGORY, label, 'settings', _('Mail Settings')
            yield CATEGORY, label, 'status', _('Mail Status')
            yield CATEGORY, label, 'queue', _('Mail Queue')
            yield CATEGORY, label, 'test', _('Test Mail')

    def render_admin_panel(self, req, cat, page, path_info):
        req.perm('admin', '%s/%s' % (CATEGORY, page)).require('TRAC_ADMIN')
        if page not in PANELS:
            page = 'settings'
        if req.method == 'POST' and \
                req.args.get('__FORM_TOKEN') != req.form_token:
            raise HTTPBadRequest(_('Missing or invalid form token. '
                                   'Do you have cookies enabled?'))
        add_stylesheet(req, 'tracnotify/admin.css')
        if page == 'settings':
            add_script(req, 'common/js/folding.js')
            add_script(req, 'tracnotify/settings.js')
        data = getattr(self, '_render_' + page)(req)
        data['panel'] = page
        return 'tracnotify_admin_%s.html' % page, data, \
            {'domain': 'tracnotify'}

    # ITemplateProvider

    def get_htdocs_dirs(self):
        return [('tracnotify', resource_filename('tracnotify', 'htdocs'))]

    def get_templates_dirs(self):
        return [resource_filename('tracnotify', 'templates/web')]

    # Settings

    def _render_settings(self, req) -> dict:
        groups = admin_settings.build_fields(self.config)
        if req.method == 'POST':
            values = admin_settings.parse_form(groups, req.args)
            warnings = admin_settings.validate(groups, self.config, values,
                                              self.env.path)
            if admin_settings.has_errors(groups):
                add_warning(req, _('Your changes have not been saved: '
                                   'please correct the fields marked in '
                                   'red.'))
            else:
                changed = admin_settings.apply(groups, self.config, values)
                if changed:
                    self._save_config(req, changed)
                else:
                    add_notice(req, _('Nothing has changed.'))
                for warning in warnings:
                    add_warning(req, warning)
                req.redirect(req.href.admin(CATEGORY, 'settings'))
        context = web_context(req)
        docs = {f.name: format_to_html(self.env, context, f.doc)
                for g in groups for f in g.fields}
        return {'groups': groups, 'docs': docs,
                'base_url': self.config.get('trac', 'base_url')}

    def _save_config(self, req, changed) -> None:
        try:
            self.config.save()
        except Exception as e:
            self.log.error('tracnotify: cannot write trac.ini: %s',
                           exception_to_unicode(e))
            add_warning(req, _('Error writing to trac.ini, make sure it is '
                               'writable by the web server. Your changes '
                               'have not been saved.'))
            return
        self.log.info('tracnotify: [notification] changed by %s: %s',
                      req.authname, ', '.join(changed))
        add_notice(req, _('Your changes have been saved.'))

    # Status

    def _render_status(self, req) -> dict:
        config = load_config(self.env)
        transport = self._describe(config)
        last = outbox.last_error(self.env)
        counts = stats.hourly_counts(self.env)
        chart = stats.chart(counts)
        labels = [(bar.x, self._time(req, bar.hour.start, '%H:%M'))
                  for i, bar in enumerate(chart.bars) if i % 6 == 0]
        errors = config.errors + load_transport_options(self.env).errors
        return {
            'config': config, 'transport': transport, 'errors': errors,
            'counts': outbox.counts(self.env),
            'last_error': last and {'when': self._time(req, last[0]),
                                    'recipient': last[1],
                                    'error': last[2]},
            'chart': chart, 'labels': labels,
            'hour_label': lambda bar: self._time(req, bar.hour.start,
                                                 '%Y-%m-%d %H:%M'),
            'tz': self._tz_name(req), 'tz_axis': self._tz_offset(req),
            'totals': {'sent': sum(c.sent for c in counts),
                       'failed': sum(c.failed for c in counts)},
        }

    @staticmethod
    def _tz_offset(req) -> str:
        """The UTC offset of the page's times now: ``UTC``, ``UTC+01:00``."""
        offset = datetime_now(req.tz).strftime('%z')
        if not offset or offset in ('+0000', '-0000'):
            return 'UTC'
        return 'UTC%s:%s' % (offset[:3], offset[3:])

    @classmethod
    def _tz_name(cls, req) -> str:
        """The time zone of the page's times, e.g. ``Europe/Berlin
        (UTC+01:00)`` or ``UTC``."""
        offset = cls._tz_offset(req)
        name = getattr(req.tz, 'zone', None) or \
            datetime_now(req.tz).tzname() or offset
        return name if name in ('UTC', offset) else \
            '%s (%s)' % (name, offset)

    @staticmethod
    def _time(req, us, fmt='%Y-%m-%d %H:%M:%S') -> str:
        if not us:
            return ''
        return format_datetime(from_utimestamp(us), fmt, tzinfo=req.tz)

    # Queue

    def _render_queue(self, req) -> dict:
        status = req.args.get('status', 'all')
        if status not in queue_admin.FILTERS and status != SENT:
            status = 'all'
        page = req.args.getint('page', 1, min=1)
        if req.method == 'POST':
            self._queue_action(req)
            req.redirect(req.href.admin(CATEGORY, 'queue', status=status,
                                        page=page))
        query = req.args.get('q', '').strip()[:200]
        since = outbox.now_us() - \
            queue_admin.DEFAULT_PURGE_DAYS * queue_admin.DAY_US
        if status == SENT:
            total = queue_admin.count_sent(self.env, query, since)
        else:
            total = queue_admin.count_queue(self.env, status)
        pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
        page = min(page, pages)
        if status == SENT:
            rows = queue_admin.list_sent(self.env, query, since,
                                         (page - 1) * PER_PAGE, PER_PAGE)
        else:
            rows = queue_admin.list_queue(self.env, status,
                                          (page - 1) * PER_PAGE, PER_PAGE)
        paginator = Paginator(rows, page - 1, PER_PAGE, total)
        self._page_links(req, paginator, status, query)
        filters = [(key, label, queue_admin.count_queue(self.env, key))
                   for key, label in (('all', _('All unsent')),
                                      ('pending', _('Pending')),
                                      ('retrying', _('Retrying')),
                                      ('dead', _('Dead')))]
        filters.append((SENT, _('Sent, last %(days)d days',
                                days=queue_admin.DEFAULT_PURGE_DAYS),
                        queue_admin.count_sent(self.env, '', since)))
        if status == SENT:
            return {
                'status': status, 'paginator': paginator, 'query': query,
                'filters': filters, 'total': total,
                'days': queue_admin.DEFAULT_PURGE_DAYS,
                'tz': self._tz_name(req),
                'sent': [{'m': m, 'when': self._time(req, m.sent_at)}
                         for m in rows],
            }
        return {
            'status': status, 'paginator': paginator,
            'state_labels': {'pending': _('pending'),
                             'retrying': _('retrying'), 'dead': _('dead')},
            'filters': filters,
            'messages': [{'m': m, 'next': self._time(req, m.next_attempt)
                          if m.status != 'dead' else '',
                          'updated': self._time(req, m.updated)}
                         for m in rows],
        }

    def _queue_action(self, req) -> None:
        ids = req.args.getlist('sel')
        if req.args.get('retry_one'):
            action, ids = 'retry', [req.args.get('retry_one')]
        elif req.args.get('delete_one'):
            action, ids = 'delete', [req.args.get('delete_one')]
        elif 'retry' in req.args:
            action = 'retry'
        elif 'delete' in req.args:
            action = 'delete'
        else:
            raise HTTPBadRequest(_('Unknown action'))
        try:
            ids = [int(i) for i in ids]
        except ValueError:
            raise HTTPBadRequest(_('Invalid message id'))
        if not ids:
            add_warning(req, _('No message selected.'))
            return
        if action == 'retry':
            n = queue_admin.retry(self.env, ids)
            add_notice(req, _('%(n)d message(s) will be sent again now.',
                              n=n))
            self._wake()
        else:
            n = queue_admin.delete(self.env, ids)
            add_notice(req, _('%(n)d message(s) deleted.', n=n))
        self.log.info('tracnotify: %s %s by %s', action, ids, req.authname)

    def _wake(self) -> None:
        try:
            DeliveryService(self.env).wake()
        except Exception as e:
            self.log.warning('tracnotify: cannot wake delivery: %s',
                             exception_to_unicode(e))

    def _page_links(self, req, paginator, status, query='') -> None:
        page = paginator.page + 1

        def href(p):
            return req.href.admin(CATEGORY, 'queue', status=status,
                                  q=query or None, page=p)
        paginator.shown_pages = [
            {'href': href(p), 'class': None, 'string': str(p),
             'title': _('Page %(num)d', num=p)}
            for p in paginator.get_shown_pages(21)]
        paginator.current_page = {'href': None, 'class': 'current',
                                  'string': str(page), 'title': None}
        if paginator.has_next_page:
            add_link(req, 'next', href(page + 1), _('Next Page'))
        if paginator.has_previous_page:
            add_link(req, 'prev', href(page - 1), _('Previous Page'))

    # Test mail

    def _render_test(self, req) -> dict:
        config = load_config(self.env)
        address = req.args.get('address', '').strip() or \
            req.session.get('email', '')
        outcome = None
        if req.method == 'POST':
            outcome = send_test(self.env, address, config)
            self.log.info('tracnotify: test mail to %s by %s: %s', address,
                          req.authname, outcome.summary)
        return {'address': address, 'outcome': outcome, 'config': config,
                'transport': self._describe(config)}

    def _describe(self, config) -> str:
        try:
            return make_transport(config, self.env).describe()
        except Exception as e:
            return exception_to_unicode(e)
