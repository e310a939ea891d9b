"""What the recipients of every realm other than tickets share.

Wiki pages (:mod:`tracnotify.mail.wiki_recipients`) and milestones
(:mod:`tracnotify.mail.milestone_recipients`) ask Trac's subscribers about
a Trac ``NotificationEvent`` of their realm, drop the author's own change
unless they chose ``own_changes``, and check the realm's view permission
for each recipient; the address handling is the ticket resolver's
(:class:`tracnotify.mail.recipients.RecipientResolver`).
"""

from typing import Dict, List

from trac.notification.api import NotificationEvent
from trac.perm import PermissionCache
from trac.resource import Resource

from tracnotify.mail.choices import site_defaults
from tracnotify.mail.message import Recipient
from tracnotify.mail.recipients import SKIPPED_SUBSCRIBERS, RecipientResolver, Rule
from tracnotify.outbox.reads import recover_aborted_read


class RealmRecipientResolver(RecipientResolver):
    """The steps a realm's resolver combines in its ``resolve``."""

    def _realm_rules(self, tevent: NotificationEvent) -> List[Rule]:
        """The e-mail rules every enabled subscriber matches for
        *tevent* (a failing subscriber is logged and skipped)."""
        rules: List[Rule] = []
        for subscriber in self.notify_sys.subscribers:
            name = subscriber.__class__.__name__
            if name in SKIPPED_SUBSCRIBERS:
                continue
            try:
                for m in subscriber.matches(tevent) or ():
                    if m and m[1] == 'email':
                        rules.append(Rule.of_match(m))
            except Exception as e:
                recover_aborted_read(self.env)
                self.log.warning('tracnotify: subscriber %s failed for %s '
                                 '%s: %s', name, tevent.realm,
                                 getattr(tevent.target, 'name', ''), e)
        return rules

    def _drop_own_change(self, chosen: Dict[str, Recipient],
                         author: str) -> None:
        """The *author* of the change gets it only with ``own_changes``."""
        if not author:
            return
        self._choices_for([r.sid for r in chosen.values()
                           if r.authenticated])
        defaults = site_defaults(self.env, self.config)
        author = author.lower()
        for key, recipient in list(chosen.items()):
            me = {(recipient.sid or '').lower(), recipient.address.lower()}
            if author not in me:
                continue
            choices = self.choices.get(recipient.sid, defaults) \
                if recipient.sid and recipient.authenticated else defaults
            if not choices.own_changes:
                del chosen[key]

    def _may_view_resource(self, recipient: Recipient, resource: Resource,
                           permission: str) -> bool:
        """Whether *recipient* (``anonymous`` unless a user) holds
        *permission* on *resource*; a refusal is logged."""
        username = recipient.sid if recipient.sid and \
            recipient.authenticated else 'anonymous'
        allowed = permission in PermissionCache(self.env, username, resource)
        if not allowed:
            self.log.info('tracnotify: %s (%s) may not view %s %s; no mail',
                          recipient.address, username, resource.realm,
                          resource.id)
        return allowed
