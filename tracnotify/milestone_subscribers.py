"""Who watches a milestone: a Trac subscriber of the milestone realm.

:class:`MilestoneWatchSubscriber` (reason ``watcher``) is an
``INotificationSubscriber``, so Trac's Preferences -> Notifications lists
it and a user's own "never" rule wins, as for wiki pages
(:mod:`tracnotify.wiki_subscribers`): the people who pressed *Watch* on
the milestone's page (rows of Trac's ``notify_watch``, class
``MilestoneWatchSubscriber``, realm ``milestone``, target the milestone's
name; :func:`milestone_watchers` reads them), on by default (``always``).

The event it sees is a Trac ``NotificationEvent`` of realm ``milestone``
whose target is the milestone
(:func:`tracnotify.mail.milestone_recipients.trac_event`).
"""

from typing import List, Tuple

from trac.core import Component, implements
from trac.notification.api import INotificationSubscriber

from tracnotify import watches
from tracnotify.i18n.domain import _
from tracnotify.milestone_event import REALM

WATCH_CLASS = 'MilestoneWatchSubscriber'
#: used when [notification-subscriber] has no rule for milestone watchers
DEFAULT_WATCH_RULE = (WATCH_CLASS, 'email', None, 100, 'always')


def milestone_watchers(env, name: str) -> List[Tuple[str, int]]:
    """``[(sid, authenticated)]`` of the people who watch milestone
    *name*."""
    return watches.watchers(env, WATCH_CLASS, REALM, name)


class MilestoneWatchSubscriber(Component):
    """People who watch a milestone (tracnotify's Watch button)."""

    implements(INotificationSubscriber)

    # INotificationSubscriber methods

    def matches(self, event):
        if event.realm != REALM or not getattr(event.target, 'name', None):
            return
        yield from watches.watcher_subscriptions(
            self.env, milestone_watchers(self.env, event.target.name),
            WATCH_CLASS, DEFAULT_WATCH_RULE)

    def description(self):
        return _('Milestone that I watch is changed')

    def default_subscriptions(self):
        return watches.default_rules(self.env, WATCH_CLASS,
                                     DEFAULT_WATCH_RULE)

    def requires_authentication(self):
        return True
