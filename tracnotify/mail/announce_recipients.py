"""Who gets an announcement: its audience, resolved to one copy per address.

* ``all``: every user Trac knows (a session with a name or an address)
  whose address resolves as for ticket mail;
* ``group:NAME``: the members of the permission group NAME, groups nested
  in it resolved (``authenticated`` and ``anonymous``: every user);
* ``milestone:NAME``: the watchers of the milestone (rows of Trac's
  ``notify_watch`` with realm ``milestone``, :mod:`tracnotify.watches`).

Then the rules of all other mail: usernames resolved to the address of
their preferences (:class:`tracnotify.mail.recipients.RecipientResolver`),
each address once, nobody who opted out of announcements (Preferences ->
Notifications), nothing to the never-mail list, each copy in its
recipient's language and format.  Every copy is addressed to its recipient
alone (no public To/Cc list, whatever ``use_public_cc`` says).
"""

from typing import Dict, List, Set, Tuple

from trac.perm import PermissionSystem
from trac.resource import ResourceNotFound
from trac.ticket.model import Milestone

from tracnotify import watches
from tracnotify.announce_event import (
    ALL,
    GROUP,
    MILESTONE,
    AnnouncementError,
    Audience,
)
from tracnotify.i18n.domain import _
from tracnotify.mail.choices import site_defaults
from tracnotify.mail.message import Recipient
from tracnotify.mail.recipients import RecipientResolver
from tracnotify.mail.suppression import drop_suppressed

REASON = 'announcement'
#: Trac's built-in groups: every user is a member
BUILTIN_GROUPS = ('anonymous', 'authenticated')

People = List[Tuple[str, int]]          # (sid, authenticated)


def known_users(env) -> People:
    """Every user Trac knows (authenticated sessions with a name or an
    address), by name."""
    return sorted((sid, 1) for sid, _name, _email in env.get_known_users())


def group_members(env, name: str) -> People:
    """The users in permission group *name*, nested groups resolved (each
    user once); :class:`AnnouncementError` when *name* is no group."""
    if name in BUILTIN_GROUPS:
        return known_users(env)
    perms = PermissionSystem(env)
    groups = perms.get_groups_dict()     # group -> its direct members
    if name not in groups:
        if name in perms.get_actions():
            raise AnnouncementError(_(
                '%(name)s is a permission, not a permission group',
                name=name))
        raise AnnouncementError(_(
            'No permission group %(name)s (groups: %(groups)s)', name=name,
            groups=', '.join(sorted(set(groups) | set(BUILTIN_GROUPS)))))
    users: Set[str] = set()
    seen, todo = {name}, [name]
    while todo:
        for member in groups.get(todo.pop(), ()):
            if member in BUILTIN_GROUPS:
                return known_users(env)
            if member in groups:
                if member not in seen:
                    seen.add(member)
                    todo.append(member)
            else:
                users.add(member)
    return sorted((sid, 1) for sid in users)


def milestone_watchers(env, name: str) -> People:
    """The watchers of milestone *name*; :class:`AnnouncementError` when
    there is no such milestone."""
    try:
        Milestone(env, name)
    except ResourceNotFound:
        raise AnnouncementError(_('No milestone %(name)s', name=name))
    return watches.realm_watchers(env, MILESTONE, name)


def audience_people(env, audience: Audience) -> People:
    """``[(sid, authenticated)]`` of *audience* (before addresses and
    choices); :class:`AnnouncementError` for an unknown group or
    milestone."""
    if audience.kind == ALL:
        return known_users(env)
    if audience.kind == GROUP:
        return group_members(env, audience.name)
    if audience.kind == MILESTONE:
        return milestone_watchers(env, audience.name)
    raise AnnouncementError(_('Unknown audience %(audience)s',
                              audience=str(audience)))


class AnnounceRecipientResolver(RecipientResolver):
    """Computes the recipients of one announcement."""

    def resolve(self, audience: Audience  # type: ignore[override]
                ) -> List[Recipient]:
        """Every recipient of an announcement to *audience*, each address
        once, in the order of their names."""
        chosen: Dict[str, Recipient] = {}
        for sid, auth in audience_people(self.env, audience):
            self._add(chosen, sid, auth, None, REASON, 'to')
        self._drop_opted_out(chosen)
        self._set_language_and_format(chosen)
        return drop_suppressed(self.env, list(chosen.values()))

    def _drop_opted_out(self, chosen: Dict[str, Recipient]) -> None:
        """Whoever turned announcements off gets none."""
        self._choices_for([r.sid for r in chosen.values()
                           if r.authenticated])
        defaults = site_defaults(self.env, self.config)
        for key, recipient in list(chosen.items()):
            choices = self.choices.get(recipient.sid, defaults) \
                if recipient.sid and recipient.authenticated else defaults
            if not choices.announcements:
                self.log.info('tracnotify: no announcement to %s (%s): '
                              'opted out', recipient.address, recipient.sid)
                del chosen[key]
