"""What happened to a ticket, as a plain, serialisable snapshot.

The listener takes the snapshot when Trac reports the change (inside the
ticket's transaction for batch modify and ``trac-admin``, just after its
commit otherwise; :mod:`tracnotify.outbox.reconcile` rebuilds the snapshots
a killed process never stored); the delivery worker turns it into mail
later, so the mail shows the ticket as it was at the moment of the change,
whatever happened since.
"""

import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Dict, Iterator, Optional, Tuple

from trac.util.datefmt import from_utimestamp, to_utimestamp

CREATED = 'ticket_created'
CHANGED = 'ticket_changed'
COMMENT = 'ticket_comment'
DELETED = 'ticket_deleted'
ATTACHMENT_ADDED = 'attachment_added'
ATTACHMENT_DELETED = 'attachment_deleted'
ATTACHMENT_KINDS = (ATTACHMENT_ADDED, ATTACHMENT_DELETED)
KINDS = (CREATED, CHANGED, COMMENT, DELETED) + ATTACHMENT_KINDS


def _dump_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {'__utimestamp__': to_utimestamp(value)}
    return value


def _load_value(value: Any) -> Any:
    if isinstance(value, dict) and '__utimestamp__' in value:
        return from_utimestamp(value['__utimestamp__'])
    return value


def known_fields(cls, data: Dict[str, Any]) -> Dict[str, Any]:
    """*data* without the keys that dataclass *cls* does not have (a
    payload written by a newer release)."""
    known = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in known}


class Snapshot:
    """What every recorded event offers: its time as a ``datetime``."""

    time: int                      # microseconds since the epoch

    @property
    def datetime(self) -> datetime:
        """The change time as an aware ``datetime``."""
        return from_utimestamp(self.time)


@dataclass
class TicketEvent(Snapshot):
    """One ticket change, as the listener saw it."""

    kind: str
    ticket_id: int
    time: int                      # change time, microseconds since epoch
    author: str
    values: Dict[str, Any]         # every field value after the change
    old_values: Dict[str, Any] = field(default_factory=dict)
    comment: str = ''
    cnum: Optional[int] = None     # comment number of the change
    old_comment: Optional[str] = None  # for an edited comment
    # attachment events only (absent from older payloads)
    filename: Optional[str] = None
    attachment_description: str = ''
    attachment_author: str = ''

    @property
    def is_attachment(self) -> bool:
        """Whether a file was attached to or removed from the ticket."""
        return self.kind in ATTACHMENT_KINDS

    @property
    def field_changes(self) -> Dict[str, Dict[str, Any]]:
        """``{field: {'old': .., 'new': ..}}`` for the fields that changed."""
        return {name: {'old': old, 'new': self.values.get(name)}
                for name, old in self.old_values.items()
                if old != self.values.get(name)}

    def sorted_changes(self) -> Iterator[Tuple[str, Any, Any]]:
        """``(field, old, new)`` for each changed field, by field name, with
        ``None`` as ``''`` (as Trac's ``TicketFormatter`` lists them)."""
        changes = self.field_changes
        for name in sorted(changes):
            old, new = changes[name]['old'], changes[name]['new']
            yield (name, '' if old is None else old,
                   '' if new is None else new)

    def to_json(self) -> str:
        """Serialise for the outbox's event table."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data['values'] = {k: _dump_value(v) for k, v in self.values.items()}
        data['old_values'] = {k: _dump_value(v)
                              for k, v in self.old_values.items()}
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> 'TicketEvent':
        """Inverse of :meth:`to_json`."""
        data = known_fields(cls, json.loads(text))
        data['values'] = {k: _load_value(v)
                          for k, v in data['values'].items()}
        data['old_values'] = {k: _load_value(v)
                              for k, v in data['old_values'].items()}
        return cls(**data)
