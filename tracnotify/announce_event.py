"""An announcement: a message from an administrator to many people.

Written on Admin -> Notification -> Announce (:mod:`tracnotify.web.announce`)
or by ``trac-admin ENV notify announce`` (:mod:`tracnotify.announce_command`),
it is recorded as an event of its own kind in the outbox, like a ticket
change, and expanded by the delivery worker
(:mod:`tracnotify.mail.announce`): who gets it is resolved then, with the
same rules as all other mail (opt-outs, the never-mail list, languages).
Its payload carries ``"realm": "announcement"`` (see
:func:`tracnotify.mail.realms.load_event`).

Audiences (:func:`parse_audience`): ``all`` (everyone with an address),
``group:NAME`` (the members of a permission group, nested groups
resolved) or ``milestone:NAME`` (the watchers of a milestone).
"""

import json
import secrets
from dataclasses import dataclass, fields
from typing import Any, Dict, NamedTuple

from tracnotify.event import Snapshot, known_fields
from tracnotify.i18n.domain import _

REALM = 'announcement'
KIND = 'announcement'
ALL = 'all'
GROUP = 'group'
MILESTONE = 'milestone'
#: the longest subject and text an announcement may have (characters)
MAX_SUBJECT = 200
MAX_TEXT = 100000


class AnnouncementError(ValueError):
    """An announcement that cannot be sent as asked (a clear message for
    the admin: an unknown group, no subject...)."""


class Audience(NamedTuple):
    """Who an announcement is for: ``(kind, name)``, *name* '' for all."""

    kind: str
    name: str = ''

    def __str__(self) -> str:
        return self.kind if self.kind == ALL else \
            '%s:%s' % (self.kind, self.name)


def parse_audience(text: str) -> Audience:
    """``all``, ``group:NAME`` or ``milestone:NAME`` as an
    :class:`Audience`; :class:`AnnouncementError` for anything else."""
    text = (text or '').strip()
    if text == ALL:
        return Audience(ALL)
    kind, colon, name = text.partition(':')
    name = name.strip()
    if colon and kind in (GROUP, MILESTONE) and name:
        return Audience(kind, name)
    raise AnnouncementError(_(
        'Unknown audience "%(audience)s": use all, group:NAME or '
        'milestone:NAME', audience=text))


def new_key() -> str:
    """A random key naming one announcement (its Message-ID, and what
    keeps a form submitted twice from sending it twice)."""
    return secrets.token_hex(12)


@dataclass
class AnnouncementEvent(Snapshot):
    """One announcement, as the admin sent it."""

    subject: str
    text: str                      # Trac wiki text
    audience: str                  # all | group:NAME | milestone:NAME
    time: int                      # microseconds since the epoch
    author: str = ''
    key: str = ''                  # new_key()
    kind: str = KIND
    realm: str = REALM

    @property
    def ticket_id(self) -> None:
        """No ticket (the outbox's ``ticket`` column stays empty)."""
        return None

    @property
    def target(self) -> Audience:
        return parse_audience(self.audience)

    def to_json(self) -> str:
        """Serialise for the outbox's event table."""
        return json.dumps({f.name: getattr(self, f.name)
                           for f in fields(self)},
                          ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'AnnouncementEvent':
        """Inverse of :meth:`to_json` (after ``json.loads``)."""
        return cls(**known_fields(cls, data))
