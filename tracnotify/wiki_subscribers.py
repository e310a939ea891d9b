"""Who is interested in a wiki page: Trac subscribers of the wiki realm.

Both are ``INotificationSubscriber`` components, so Trac's Preferences ->
Notifications lists them and each user's own rules rank with them, as for
tickets:

* :class:`WikiWatchSubscriber` (reason ``watcher``): the people who
  pressed *Watch* on the page (rows of ``notify_watch``, realm ``wiki``);
  on by default (``always``), a user's "never" rule wins;
* :class:`WikiPreviousAuthorsSubscriber` (reason ``previous_author``):
  the authors of the page's earlier versions, **for those who opt in**:
  there is no default rule, a user adds "Wiki page that I edited before
  is modified" to their rules (or an admin sets one in
  ``[notification-subscriber]``).

The event they see is a Trac ``NotificationEvent`` of realm ``wiki`` whose
target is the page (:func:`tracnotify.mail.wiki_recipients.trac_event`).
"""

from trac.core import Component, implements
from trac.notification.api import INotificationSubscriber, NotificationSystem
from trac.ticket.notification import _ticket_change_subscribers

from tracnotify import watches
from tracnotify.i18n.domain import _
from tracnotify.wiki_event import REALM

WATCH_CLASS = 'WikiWatchSubscriber'
AUTHORS_CLASS = 'WikiPreviousAuthorsSubscriber'
#: used when [notification-subscriber] has no rule for page watchers
DEFAULT_WATCH_RULE = (WATCH_CLASS, 'email', None, 100, 'always')


def page_watchers(env, name: str):
    """``[(sid, authenticated)]`` of the people who watch page *name*."""
    return watches.watchers(env, WATCH_CLASS, REALM, name)


class WikiWatchSubscriber(Component):
    """People who watch a wiki page (tracnotify's Watch button)."""

    implements(INotificationSubscriber)

    # INotificationSubscriber methods

    def matches(self, event):
        if event.realm != REALM or not getattr(event.target, 'name', None):
            return
        yield from watches.watcher_subscriptions(
            self.env, page_watchers(self.env, event.target.name),
            WATCH_CLASS, DEFAULT_WATCH_RULE)

    def description(self):
        return _('Wiki page that I watch is modified')

    def default_subscriptions(self):
        return watches.default_rules(self.env, WATCH_CLASS,
                                     DEFAULT_WATCH_RULE)

    def requires_authentication(self):
        return True


class WikiPreviousAuthorsSubscriber(Component):
    """Authors of a wiki page's earlier versions, if they ask for it."""

    implements(INotificationSubscriber)

    # INotificationSubscriber methods

    def matches(self, event):
        name = getattr(event.target, 'name', None)
        if event.realm != REALM or not name or event.category == 'created':
            return ()
        version = getattr(event.target, 'version', None) or 0
        sql = 'SELECT DISTINCT author FROM wiki WHERE name=%s'
        args: tuple = (name,)
        if version:  # the page as it was: authors up to this change
            sql += ' AND version<%s'
            args += (version,)
        authors = [a for a, in self.env.db_query(sql, args)
                   if a and a != event.author]
        return _ticket_change_subscribers(self, authors)

    def description(self):
        return _('Wiki page that I edited before is modified')

    def default_subscriptions(self):
        # opt-in: nobody unless a rule says so
        return NotificationSystem(self.env).default_subscriptions(
            AUTHORS_CLASS)

    def requires_authentication(self):
        return True
