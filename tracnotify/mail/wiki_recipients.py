"""Who gets mail about a wiki page change, and why.

Trac's subscription machinery, as for tickets
(:class:`tracnotify.mail.recipients.RecipientResolver`, whose address
handling this reuses): every enabled ``INotificationSubscriber`` is asked
about a Trac ``NotificationEvent`` of realm ``wiki`` (ticket subscribers
ignore it; tracnotify's page watchers and opted-in previous authors answer,
see :mod:`tracnotify.wiki_subscribers`), rules ranked as Trac ranks them.
Then: each address once, nobody's own change unless they chose
``own_changes``, the never-mail list, and ``WIKI_VIEW`` on the page for
each recipient (fine-grained policies included; addresses that are not
users are checked as ``anonymous``).  ``smtp_always_cc`` /
``smtp_always_bcc`` are ticket mail's and are not added.
"""

from typing import Dict, List, Optional

from trac.notification.api import NotificationEvent
from trac.resource import Resource
from trac.wiki.model import WikiPage

from tracnotify.mail.message import Recipient
from tracnotify.mail.realm_recipients import RealmRecipientResolver
from tracnotify.mail.suppression import drop_suppressed
from tracnotify.wiki_event import (
    ATTACHMENT_ADDED,
    ATTACHMENT_DELETED,
    CREATED,
    DELETED,
    REALM,
    RENAMED,
    WikiEvent,
)
from tracnotify.wiki_subscribers import AUTHORS_CLASS, WATCH_CLASS

#: subscriber class -> X-Trac-Notification-Reason
REASONS = {WATCH_CLASS: 'watcher', AUTHORS_CLASS: 'previous_author'}
#: event kind -> the category of Trac's NotificationEvent
CATEGORIES = {CREATED: 'created', RENAMED: 'renamed', DELETED: 'deleted',
              ATTACHMENT_ADDED: 'attachment added',
              ATTACHMENT_DELETED: 'attachment deleted'}


def snapshot_page(env, event: WikiEvent) -> WikiPage:
    """A ``WikiPage`` carrying the snapshot's name, version and text (not
    read from the database: the page may have changed since)."""
    page = WikiPage(env)
    page.name = event.page
    page.version = event.version
    page.text = event.text
    page.author = event.author
    page.comment = event.comment
    return page


def trac_event(event: WikiEvent, page: WikiPage) -> NotificationEvent:
    """The Trac event Trac's subscribers are asked about."""
    return NotificationEvent(REALM, CATEGORIES.get(event.kind, 'changed'),
                             page, event.datetime, event.author)


class WikiRecipientResolver(RealmRecipientResolver):
    """Computes the recipients of one wiki page event."""

    def resolve(self, event: WikiEvent,  # type: ignore[override]
                page: Optional[WikiPage] = None) -> List[Recipient]:
        """Every recipient of *event*, each address once."""
        if page is None:
            page = snapshot_page(self.env, event)
        rules = self._realm_rules(trac_event(event, page))
        chosen: Dict[str, Recipient] = {}
        for r in sorted(self._winning_rules(rules), key=lambda r: not r.sid):
            self._add(chosen, r.sid, r.authenticated, r.address,
                      REASONS.get(r.klass, 'subscribed'))
        self._drop_own_change(chosen, event.author)
        self._set_language_and_format(chosen)
        return drop_suppressed(self.env, [r for r in chosen.values()
                                          if self._may_view_page(r, event)])

    def _may_view_page(self, recipient: Recipient, event: WikiEvent) -> bool:
        return self._may_view_resource(recipient, Resource(REALM, event.page),
                                       'WIKI_VIEW')
