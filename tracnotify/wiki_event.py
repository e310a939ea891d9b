"""What happened to a wiki page, as a plain, serialisable snapshot.

Like :class:`tracnotify.event.TicketEvent`, the listener takes it when Trac
reports the change, and the delivery worker turns it into mail later: the
texts of both versions are in the snapshot, so the mail shows the change
even if the page was edited, renamed or deleted since.  Its payload carries
``"realm": "wiki"`` (see :func:`tracnotify.mail.realms.load_event`).
"""

import json
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional

from tracnotify.event import Snapshot, known_fields

REALM = 'wiki'
CREATED = 'wiki_created'
CHANGED = 'wiki_changed'
RENAMED = 'wiki_renamed'
DELETED = 'wiki_deleted'
ATTACHMENT_ADDED = 'wiki_attachment_added'
ATTACHMENT_DELETED = 'wiki_attachment_deleted'
ATTACHMENT_KINDS = (ATTACHMENT_ADDED, ATTACHMENT_DELETED)
KINDS = (CREATED, CHANGED, RENAMED, DELETED) + ATTACHMENT_KINDS


@dataclass
class WikiEvent(Snapshot):
    """One change of a wiki page, as the listener saw it."""

    kind: str
    page: str                      # the page's name (after a rename)
    time: int                      # microseconds since the epoch
    author: str = ''
    version: int = 0               # the page's version after the change
    old_version: int = 0           # the version the diff starts from
    text: str = ''                 # the text of *version*
    old_text: str = ''             # the text of *old_version*
    comment: str = ''              # the change comment
    old_name: Optional[str] = None  # a rename: the page's former name
    filename: Optional[str] = None  # attachment events
    attachment_description: str = ''
    realm: str = REALM

    @property
    def ticket_id(self) -> None:
        """No ticket (the outbox's ``ticket`` column stays empty)."""
        return None

    @property
    def is_attachment(self) -> bool:
        return self.kind in ATTACHMENT_KINDS

    def to_json(self) -> str:
        """Serialise for the outbox's event table."""
        return json.dumps({f.name: getattr(self, f.name)
                           for f in fields(self)},
                          ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> 'WikiEvent':
        """Inverse of :meth:`to_json` (after ``json.loads``); unknown keys
        of a newer payload are ignored."""
        return cls(**known_fields(cls, data))

    @classmethod
    def from_json(cls, text: str) -> 'WikiEvent':
        return cls.from_dict(json.loads(text))
