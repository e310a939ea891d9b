"""Watch a wiki page (or a milestone): a Watch / Unwatch button like the
ticket's (:mod:`tracnotify.web.watch`).

The button sits in the page's context navigation for a logged-in user who
may view it, and posts to ``/tracnotify/watch/<realm>/<name>`` with Trac's
form token.  The rows are Trac's ``notify_watch`` (:mod:`tracnotify.watches`),
read by the realm's subscriber (:mod:`tracnotify.wiki_subscribers`,
:mod:`tracnotify.milestone_subscribers`), so a user's own "never" rule on
Preferences -> Notifications wins.
"""

import re
from typing import Callable, Dict, NamedTuple

from trac.core import Component, implements
from trac.resource import Resource, ResourceNotFound
from trac.ticket.model import Milestone
from trac.util.html import tag
from trac.web.api import HTTPBadRequest, IRequestFilter, IRequestHandler
from trac.web.chrome import add_ctxtnav, add_notice
from trac.wiki.model import WikiPage

from tracnotify import watches
from tracnotify.i18n.domain import _
from tracnotify.milestone_subscribers import WATCH_CLASS as MILESTONE_WATCH_CLASS
from tracnotify.wiki_subscribers import WATCH_CLASS as WIKI_WATCH_CLASS

_path_re = re.compile(r'^/tracnotify/watch/(wiki|milestone)/(.+?)/?$')


def milestone_exists(env, name: str) -> bool:
    """Whether milestone *name* exists."""
    try:
        return Milestone(env, name).exists
    except ResourceNotFound:
        return False


class WatchedRealm(NamedTuple):
    """What a Watch button needs to know about one realm."""

    klass: str                   # the notify_watch class (its subscriber)
    permission: str              # to view a resource of the realm
    template: str                # the page that shows the button
    data_key: str                # the resource in that page's data
    exists: Callable[..., bool]  # exists(env, name)
    href: Callable[..., str]     # href(req, name): the resource's page
    watching: Callable[[], str]  # notices and titles (translated when
    stopped: Callable[[], str]   # called, in the request's language)
    title_watch: Callable[[], str]
    title_unwatch: Callable[[], str]
    missing: Callable[[], str]   # the error when it does not exist


REALMS: Dict[str, WatchedRealm] = {
    'wiki': WatchedRealm(
        WIKI_WATCH_CLASS, 'WIKI_VIEW', 'wiki_view.html', 'page',
        lambda env, name: WikiPage(env, name).exists,
        lambda req, name: req.href.wiki(name),
        lambda: _('You are watching this page: you will get mail about '
                  'its changes.'),
        lambda: _('You no longer watch this page.'),
        lambda: _('Get mail about changes of this page'),
        lambda: _('Stop mail about this page'),
        lambda: _('No such page.')),
    'milestone': WatchedRealm(
        MILESTONE_WATCH_CLASS, 'MILESTONE_VIEW', 'milestone_view.html',
        'milestone', milestone_exists,
        lambda req, name: req.href.milestone(name),
        lambda: _('You are watching this milestone: you will get mail '
                  'about its changes.'),
        lambda: _('You no longer watch this milestone.'),
        lambda: _('Get mail about changes of this milestone'),
        lambda: _('Stop mail about this milestone'),
        lambda: _('No such milestone.')),
}


class RealmWatchModule(Component):
    """The Watch / Unwatch button on wiki pages and milestones, and its
    handler."""

    implements(IRequestFilter, IRequestHandler)

    # IRequestFilter methods

    def pre_process_request(self, req, handler):
        return handler

    def post_process_request(self, req, template, data, metadata):
        if not data or not req.is_authenticated:
            return template, data, metadata
        for realm, info in REALMS.items():
            if template != info.template:
                continue
            resource = data.get(info.data_key)
            try:
                if resource is not None and \
                        getattr(resource, 'exists', False) and \
                        info.permission in req.perm(resource.resource):
                    add_ctxtnav(req, self._button(req, realm,
                                                  resource.name))
            except Exception as e:  # never break the page
                self.log.warning('tracnotify: no watch button: %s', e)
        return template, data, metadata

    # IRequestHandler methods

    def match_request(self, req):
        match = _path_re.match(req.path_info)
        if match:
            req.args['realm'] = match.group(1)
            req.args['name'] = match.group(2)
        return bool(match)

    def process_request(self, req):
        realm, name = req.args.get('realm'), req.args.get('name')
        info = REALMS[realm]
        if req.method != 'POST':
            req.redirect(info.href(req, name))
        req.perm(Resource(realm, name)).require(info.permission)
        if not req.is_authenticated:
            raise HTTPBadRequest(_('Log in to watch pages.'))
        if not info.exists(self.env, name):
            raise HTTPBadRequest(info.missing())
        action = req.args.get('action')
        if action == 'watch':
            watches.watch(self.env, req.authname, info.klass, realm, name)
            add_notice(req, info.watching())
        elif action == 'unwatch':
            watches.unwatch(self.env, req.authname, info.klass, realm, name)
            add_notice(req, info.stopped())
        else:
            raise HTTPBadRequest(_('Unknown action'))
        self.log.info('tracnotify: %s %ses %s %s', req.authname, action,
                      realm, name)
        req.redirect(info.href(req, name))

    # Internal methods

    def _button(self, req, realm: str, name: str):
        info = REALMS[realm]
        watching = watches.is_watching(self.env, req.authname, info.klass,
                                       realm, name)
        action = 'unwatch' if watching else 'watch'
        return tag.form(
            tag.input(type='hidden', name='__FORM_TOKEN',
                      value=req.form_token),
            tag.input(type='hidden', name='action', value=action),
            tag.button(_('Unwatch') if watching else _('Watch'),
                       type='submit', id='tracnotify-' + action,
                       title=info.title_unwatch() if watching
                       else info.title_watch(),
                       style='font-size: inherit; padding: 0 .3em'),
            method='post', action=req.href('tracnotify', 'watch', realm, name),
            id='tracnotify-watch', style='display: inline; margin: 0')
