"""Who gets mail about a milestone change, and why.

As for wiki pages (:mod:`tracnotify.mail.wiki_recipients`): every enabled
``INotificationSubscriber`` is asked about a Trac ``NotificationEvent`` of
realm ``milestone`` (tracnotify's milestone watchers answer, see
:mod:`tracnotify.milestone_subscribers`), rules ranked as Trac ranks them.
With ``[notification] milestone_notify_ticket_people`` the owners and
reporters of the milestone's open tickets, as the snapshot names them, are
added (reasons ``owner`` / ``reporter``).  Then: each address once, nobody's
own change unless they chose ``own_changes``, the never-mail list, and
``MILESTONE_VIEW`` on the milestone for each recipient (fine-grained
policies included; addresses that are not users are checked as
``anonymous``).  ``smtp_always_cc`` / ``smtp_always_bcc`` are ticket
mail's and are not added.
"""

from typing import Dict, List

from trac.notification.api import NotificationEvent
from trac.resource import Resource
from trac.ticket.model import Milestone

from tracnotify.mail.intl_recipients import match_international
from tracnotify.mail.message import Recipient
from tracnotify.mail.realm_recipients import RealmRecipientResolver
from tracnotify.mail.suppression import drop_suppressed
from tracnotify.milestone_event import (
    COMPLETED,
    CREATED,
    DELETED,
    REALM,
    RENAMED,
    MilestoneEvent,
)
from tracnotify.milestone_subscribers import WATCH_CLASS

#: subscriber class -> X-Trac-Notification-Reason
REASONS = {WATCH_CLASS: 'watcher'}
#: event kind -> the category of Trac's NotificationEvent
CATEGORIES = {CREATED: 'created', COMPLETED: 'completed',
              RENAMED: 'renamed', DELETED: 'deleted'}
PERMISSION = 'MILESTONE_VIEW'


def snapshot_milestone(env, event: MilestoneEvent) -> Milestone:
    """A ``Milestone`` carrying the snapshot's name (not read from the
    database: it may have changed or gone since)."""
    milestone = Milestone(env)
    milestone.name = event.milestone
    milestone.description = event.description
    return milestone


def trac_event(event: MilestoneEvent,
               milestone: Milestone) -> NotificationEvent:
    """The Trac event Trac's subscribers are asked about."""
    return NotificationEvent(REALM, CATEGORIES.get(event.kind, 'changed'),
                             milestone, event.datetime, event.author)


class MilestoneRecipientResolver(RealmRecipientResolver):
    """Computes the recipients of one milestone event."""

    def resolve(self, event: MilestoneEvent  # type: ignore[override]
                ) -> List[Recipient]:
        """Every recipient of *event*, each address once."""
        milestone = snapshot_milestone(self.env, event)
        rules = self._realm_rules(trac_event(event, milestone))
        chosen: Dict[str, Recipient] = {}
        for r in sorted(self._winning_rules(rules), key=lambda r: not r.sid):
            self._add(chosen, r.sid, r.authenticated, r.address,
                      REASONS.get(r.klass, 'subscribed'))
        if self.config.milestone_notify_ticket_people:
            for role, who in event.ticket_people:
                self._add_ticket_person(chosen, role, who)
        self._drop_own_change(chosen, event.author)
        self._set_language_and_format(chosen)
        resource = Resource(REALM, event.milestone)
        return drop_suppressed(self.env, [
            r for r in chosen.values()
            if self._may_view_resource(r, resource, PERMISSION)])

    def _add_ticket_person(self, chosen: Dict[str, Recipient], role: str,
                           who: str) -> None:
        """The owner or reporter *who* (a username or an address)."""
        match = self.matcher.match_recipient(who) or \
            match_international(self.matcher, who)
        if not match:
            self.log.info('tracnotify: %s %r of a ticket of a milestone is '
                          'not a usable address; skipped', role, who)
            return
        sid, auth, addr = match
        self._add(chosen, sid, auth, addr, role)
