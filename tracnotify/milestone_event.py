"""What happened to a milestone, as a plain, serialisable snapshot.

Like :class:`tracnotify.wiki_event.WikiEvent`, the listener takes it when
Trac reports the change (:mod:`tracnotify.milestone_listener`) and the
delivery worker turns it into mail later: the values before and after the
change are in the snapshot, so the mail shows the change as it was.  Its
payload carries ``"realm": "milestone"`` (see
:func:`tracnotify.mail.realms.load_event`).
"""

import json
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from tracnotify.event import Snapshot, known_fields

REALM = 'milestone'
CREATED = 'milestone_created'
CHANGED = 'milestone_changed'        # due date, description, reopened
COMPLETED = 'milestone_completed'
RENAMED = 'milestone_renamed'
DELETED = 'milestone_deleted'
KINDS = (CREATED, CHANGED, COMPLETED, RENAMED, DELETED)
#: the milestone's properties Trac reports in ``old_values``, in the order
#: a mail lists their changes
PROPERTIES = ('name', 'due', 'completed', 'description')


@dataclass
class MilestoneEvent(Snapshot):
    """One change of a milestone, as the listener saw it."""

    kind: str
    milestone: str                 # the milestone's name (after a rename)
    time: int                      # microseconds since the epoch
    author: str = ''               # who changed it (web requests only)
    due: Optional[int] = None      # microseconds since the epoch
    completed: Optional[int] = None
    description: str = ''
    #: property -> its value before the change (times in microseconds)
    old_values: Dict[str, Any] = field(default_factory=dict)
    #: ``[[role, name or address]]``: owners and reporters of its open
    #: tickets, when ``milestone_notify_ticket_people`` was on
    ticket_people: List[List[str]] = field(default_factory=list)
    realm: str = REALM

    @property
    def ticket_id(self) -> None:
        """No ticket (the outbox's ``ticket`` column stays empty)."""
        return None

    @property
    def old_name(self) -> Optional[str]:
        """The former name of a renamed milestone."""
        return self.old_values.get('name')

    def to_json(self) -> str:
        """Serialise for the outbox's event table."""
        return json.dumps({f.name: getattr(self, f.name)
                           for f in fields(self)},
                          ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'MilestoneEvent':
        """Inverse of :meth:`to_json` (after ``json.loads``); unknown keys
        of a newer payload are ignored."""
        return cls(**known_fields(cls, data))

    @classmethod
    def from_json(cls, text: str) -> 'MilestoneEvent':
        return cls.from_dict(json.loads(text))


def change_kind(old_values: Dict[str, Any], completed: Any) -> Optional[str]:
    """The kind of a ``milestone_changed`` call: completed (it was open
    and is now completed) before renamed before changed; None when nothing
    changed."""
    if not old_values:
        return None
    if 'completed' in old_values and old_values['completed'] is None and \
            completed is not None:
        return COMPLETED
    if 'name' in old_values:
        return RENAMED
    return CHANGED
