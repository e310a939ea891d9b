"""Watch a ticket: follow it by mail without editing its cc field.

A *Watch / Unwatch* item in the ticket page's context navigation (a
button drawn like the links beside it, htdocs/watch.css) posts to
``/tracnotify/watch/<id>`` (a logged-in user with ``TICKET_VIEW``, Trac's
form token).  Watches live in Trac's own ``notify_watch`` table (class
``TicketWatchSubscriber``, realm ``ticket``); :class:`TicketWatchSubscriber`
is an ``INotificationSubscriber``, so Trac's subscription machinery and
tracnotify's recipients see watchers like any other role (reason
``watcher``), a user's own rule for "Ticket that I watch is modified" on
Preferences -> Notifications wins, and watchers who may not view the ticket
get nothing.
"""

import re
from typing import List, Tuple

from trac.core import Component, implements
from trac.notification.api import INotificationSubscriber
from trac.resource import Resource
from trac.util.html import tag
from trac.web.api import HTTPBadRequest, IRequestFilter, IRequestHandler
from trac.web.chrome import (
    ITemplateProvider,
    add_ctxtnav,
    add_notice,
    add_stylesheet,
)

from tracnotify import watches
from tracnotify.i18n.domain import _

KLASS = 'TicketWatchSubscriber'
REALM = 'ticket'
#: used when [notification-subscriber] has no rule for watchers
DEFAULT_RULE = (KLASS, 'email', None, 100, 'always')
_watch_path_re = re.compile(r'^/tracnotify/watch/([0-9]+)/?$')
_CATEGORIES = ('created', 'changed', 'attachment added',
               'attachment deleted')


def watchers(env, ticket_id) -> List[Tuple[str, int]]:
    """``[(sid, authenticated)]`` of the people who watch a ticket."""
    return [(sid, int(auth)) for sid, auth in env.db_query("""
        SELECT DISTINCT sid, authenticated FROM notify_watch
        WHERE class=%s AND realm=%s AND target=%s
        ORDER BY sid""", (KLASS, REALM, str(ticket_id)))]


def is_watching(env, sid: str, ticket_id) -> bool:
    return bool(env.db_query("""
        SELECT 1 FROM notify_watch
        WHERE sid=%s AND authenticated=1 AND class=%s AND realm=%s
              AND target=%s""", (sid, KLASS, REALM, str(ticket_id))))


def watch(env, sid: str, ticket_id) -> bool:
    """Make *sid* (an authenticated user) watch a ticket."""
    with env.db_transaction as db:
        if is_watching(env, sid, ticket_id):
            return False
        db("""INSERT INTO notify_watch
                  (sid, authenticated, class, realm, target)
              VALUES (%s, 1, %s, %s, %s)""",
           (sid, KLASS, REALM, str(ticket_id)))
    return True


def unwatch(env, sid: str, ticket_id) -> bool:
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            DELETE FROM notify_watch
            WHERE sid=%s AND authenticated=1 AND class=%s AND realm=%s
                  AND target=%s""", (sid, KLASS, REALM, str(ticket_id)))
        return cursor.rowcount > 0


class TicketWatchSubscriber(Component):
    """People who watch a ticket (tracnotify's Watch button)."""

    implements(INotificationSubscriber)

    # INotificationSubscriber methods

    def matches(self, event):
        if event.realm != REALM or event.category not in _CATEGORIES or \
                getattr(event.target, 'id', None) is None:
            return
        yield from watches.watcher_subscriptions(
            self.env, watchers(self.env, event.target.id), KLASS,
            DEFAULT_RULE)

    def description(self):
        return _('Ticket that I watch is modified')

    def default_subscriptions(self):
        return watches.default_rules(self.env, KLASS, DEFAULT_RULE)

    def requires_authentication(self):
        return True


class TicketWatchModule(Component):
    """The Watch / Unwatch button on ticket pages and its handler."""

    implements(IRequestFilter, IRequestHandler, ITemplateProvider)

    # ITemplateProvider methods (the stylesheet of the Watch link)

    def get_htdocs_dirs(self):
        from pkg_resources import resource_filename
        return [('tracnotify', resource_filename('tracnotify', 'htdocs'))]

    def get_templates_dirs(self):
        return []

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        return handler

    def post_process_request(self, req, template, data, metadata):
        if template == 'ticket.html' and data and req.is_authenticated:
            ticket = data.get('ticket')
            if ticket is not None and ticket.exists and \
                    'TICKET_VIEW' in req.perm(ticket.resource):
                try:
                    add_stylesheet(req, 'tracnotify/watch.css')
                    add_ctxtnav(req, self._button(req, ticket.id))
                except Exception as e:  # never break the ticket page
                    self.log.warning('tracnotify: no watch button: %s', e)
        return template, data, metadata

    # IRequestHandler methods

    def match_request(self, req):
        match = _watch_path_re.match(req.path_info)
        if match:
            req.args['id'] = match.group(1)
        return bool(match)

    def process_request(self, req):
        ticket_id = int(req.args.get('id'))
        if req.method != 'POST':
            req.redirect(req.href.ticket(ticket_id))
        req.perm(Resource(REALM, ticket_id)).require('TICKET_VIEW')
        if not req.is_authenticated:
            raise HTTPBadRequest(_('Log in to watch tickets.'))
        if not self.env.db_query('SELECT id FROM ticket WHERE id=%s',
                                 (ticket_id,)):
            raise HTTPBadRequest(_('No such ticket.'))
        action = req.args.get('action')
        if action == 'watch':
            watch(self.env, req.authname, ticket_id)
            add_notice(req, _('You are watching this ticket: you will get '
                              'mail about its changes.'))
        elif action == 'unwatch':
            unwatch(self.env, req.authname, ticket_id)
            add_notice(req, _('You no longer watch this ticket.'))
        else:
            raise HTTPBadRequest(_('Unknown action'))
        self.log.info('tracnotify: %s %ses ticket #%s', req.authname, action,
                      ticket_id)
        req.redirect(req.href.ticket(ticket_id))

    # Internal methods

    def _button(self, req, ticket_id):
        watching = is_watching(self.env, req.authname, ticket_id)
        action = 'unwatch' if watching else 'watch'
        label = _('Unwatch') if watching else _('Watch')
        title = _('Stop mail about this ticket') if watching else \
            _('Get mail about changes of this ticket without being in Cc')
        # a POST (it changes something), drawn as a context-nav link by
        # htdocs/watch.css
        return tag.form(
            tag.input(type='hidden', name='__FORM_TOKEN',
                      value=req.form_token),
            tag.input(type='hidden', name='action', value=action),
            tag.button(label, type='submit', title=title,
                       id='tracnotify-' + action),
            method='post', action=req.href('tracnotify', 'watch', ticket_id),
            id='tracnotify-watch-form', class_='tracnotify-ctxtnav-form')
