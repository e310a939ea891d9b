"""Changes that reached Trac's tables but not the outbox, recorded late.

For web and script saves Trac calls the change listeners *after* the
ticket's transaction committed: a process killed (or a database that fails)
between that commit and the outbox insert would lose the change's mail.
Each delivery pass therefore looks at the creations (``ticket.time``) and
changes (``ticket_change.time``) made since its last look and records those
that have no event, with a snapshot rebuilt from the ticket's history.

* Cheap and bounded: a high-water mark in Trac's ``system`` table
  (:data:`MARK`), two range queries on indexed ``time`` columns, at most
  about :data:`MAX_ROWS` history rows per pass.
* Exactly once: each creation and change has a key
  (:func:`change_key`) in the unique column ``tracnotify_event.change_key``;
  the listener writes it too, so whichever of the two comes second finds
  the row taken and records nothing.
* A change younger than :data:`GRACE_SECONDS` is left to its listener.
* Changes made while ``smtp_enabled`` is false are passed over (the
  listener records nothing then either), and the mark starts when the
  tables are created or upgraded to version 4: history is never mailed.

Not covered: attachments (no row in ``ticket_change``), comment edits and
deleted tickets, and changes saved with a ``when`` older than the mark
(imports): only their listener records them.
"""

from typing import Dict, List, Optional, Sequence, Tuple

from trac.resource import ResourceNotFound
from trac.ticket.model import Ticket
from trac.util.datefmt import from_utimestamp, to_utimestamp
from trac.util.text import exception_to_unicode

from tracnotify import outbox
from tracnotify.event import CHANGED, COMMENT, CREATED, TicketEvent

#: name of the ``system`` row: changes up to this time (microseconds) have
#: been looked at
MARK = 'tracnotify_reconciled'
#: seconds a change is left to its listener before the reconciler records it
GRACE_SECONDS = 10
#: history rows looked at per pass (more when many share the last time)
MAX_ROWS = 500
US = 1000000
_CHUNK = 100


def change_key(ticket_id: int, time_us: int, created: bool) -> str:
    """The unique key of a ticket's creation or of one of its changes."""
    return '%d:%d:%s' % (ticket_id, time_us, 'c' if created else 'm')


def event_key(event: TicketEvent) -> Optional[str]:
    """The key of *event*, or None for events that have none (comment
    edits, deletions, attachments)."""
    if event.kind == CREATED:
        return change_key(event.ticket_id, event.time, True)
    if event.kind in (CHANGED, COMMENT) and event.old_comment is None:
        return change_key(event.ticket_id, event.time, False)
    return None


def read_mark(env) -> Optional[int]:
    """The high-water mark, or None when there is none yet."""
    for value, in env.db_query('SELECT value FROM system WHERE name=%s',
                               (MARK,)):
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return None


def set_mark(env, time_us: int) -> None:
    """Write the high-water mark (inserted when missing)."""
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute('UPDATE system SET value=%s WHERE name=%s',
                       (str(time_us), MARK))
        if cursor.rowcount == 0:
            cursor.execute('INSERT INTO system (name, value) VALUES (%s, %s)',
                           (MARK, str(time_us)))


def start_mark(env, now_us: Optional[int] = None) -> None:
    """Start looking from now (tables created or upgraded)."""
    set_mark(env, outbox.now_us() if now_us is None else now_us)


def is_recorded(env, key: str) -> bool:
    """Whether an event with *key* is in the outbox."""
    return bool(env.db_query(
        'SELECT 1 FROM tracnotify_event WHERE change_key=%s', (key,)))


def reconcile(env, now_us: Optional[int] = None, record: bool = True) -> int:
    """Record the creations and changes since the mark that have no event
    (with *record* false, only move the mark); returns how many were
    recorded."""
    now = outbox.now_us() if now_us is None else now_us
    mark = read_mark(env)
    if mark is None:
        start_mark(env, now)
        return 0
    upto = now - GRACE_SECONDS * US
    if upto <= mark:
        return 0
    upto = _window_end(env, mark, upto)
    recorded = 0
    if record:
        for key, ticket_id, time_us, created in _missing(env, mark, upto):
            event = snapshot_event(env, ticket_id, time_us, created)
            if event is not None and _record(env, event, key):
                recorded += 1
    set_mark(env, upto)
    if recorded:
        env.log.warning('tracnotify: %d ticket change(s) had reached Trac but '
                        'not the outbox (a process stopped between the two); '
                        'recorded now', recorded)
    return recorded


# Internal functions

def _window_end(env, mark: int, upto: int) -> int:
    """*upto*, or an earlier time when more than MAX_ROWS rows lie between
    the mark and it (every row of that last time is still taken)."""
    for table in ('ticket_change', 'ticket'):
        rows = env.db_query("""
            SELECT time FROM %s WHERE time>%%s AND time<=%%s
            ORDER BY time LIMIT %%s""" % table, (mark, upto, MAX_ROWS))
        if len(rows) == MAX_ROWS:
            upto = min(upto, rows[-1][0])
    return upto


def _missing(env, mark: int, upto: int
             ) -> List[Tuple[str, int, int, bool]]:
    """``(key, ticket, time, created)`` of the creations and changes in
    ``(mark, upto]`` without an event, oldest first."""
    found: Dict[str, Tuple[int, int, bool]] = {}
    for ticket_id, time_us in env.db_query("""
            SELECT id, time FROM ticket WHERE time>%s AND time<=%s""",
            (mark, upto)):
        found[change_key(ticket_id, time_us, True)] = (ticket_id, time_us,
                                                       True)
    for ticket_id, time_us in env.db_query("""
            SELECT DISTINCT ticket, time FROM ticket_change
            WHERE time>%s AND time<=%s""", (mark, upto)):
        found[change_key(ticket_id, time_us, False)] = (ticket_id, time_us,
                                                        False)
    keys = list(found)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        for key, in env.db_query("""
                SELECT change_key FROM tracnotify_event
                WHERE change_key IN (%s)""" % ','.join(['%s'] * len(chunk)),
                chunk):
            found.pop(key, None)
    return sorted(((k,) + v for k, v in found.items()),
                  key=lambda m: (m[2], not m[3], m[1]))


def _is_field(name: str) -> bool:
    return name != 'comment' and not name.startswith('_')


def snapshot_event(env, ticket_id: int, time_us: int,
                   created: bool) -> Optional[TicketEvent]:
    """The event of the creation or change of *ticket_id* at *time_us*,
    as its listener would have recorded it, rebuilt from the ticket and
    its history; None when the ticket or the change is gone."""
    try:
        ticket = Ticket(env, ticket_id)
    except ResourceNotFound:
        return None
    values = dict(ticket.values)
    rows = env.db_query("""
        SELECT time, author, field, oldvalue, newvalue FROM ticket_change
        WHERE ticket=%s AND time>=%s ORDER BY time DESC""",
                        (ticket_id, time_us))
    at: Sequence[tuple] = []
    for row in rows:          # newest first: undo what came later
        if row[0] == time_us and not created:
            at = [r for r in rows if r[0] == time_us]
            break
        if _is_field(row[2]):
            values[row[2]] = row[3]
    if created:
        values['changetime'] = values.get('time')
        return TicketEvent(kind=CREATED, ticket_id=ticket_id,
                           time=to_utimestamp(values['time']),
                           author=values.get('reporter') or '',
                           values=values)
    if not at:
        return None
    values['changetime'] = from_utimestamp(time_us)
    old_values = {r[2]: r[3] for r in at if _is_field(r[2])}
    comment = next((r[4] for r in at if r[2] == 'comment'), '') or ''
    fields_changed = any(old != values.get(name)
                         for name, old in old_values.items())
    return TicketEvent(
        kind=CHANGED if fields_changed or not comment else COMMENT,
        ticket_id=ticket_id, time=time_us, author=at[0][1] or '',
        values=values, old_values=old_values, comment=comment)


def _record(env, event: TicketEvent, key: str) -> bool:
    try:
        outbox.add_event(env, event, change_key=key)
        return True
    except Exception as e:
        if is_recorded(env, key):
            return False        # its listener (or another worker) was first
        env.log.error('tracnotify: could not record the lost %s of ticket '
                      '#%s: %s', event.kind, event.ticket_id,
                      exception_to_unicode(e))
        return False
