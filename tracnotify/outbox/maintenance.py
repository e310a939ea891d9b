"""Looking after the outbox by hand: list, retry, delete, purge.

Plain functions over Trac's DB API, shared by the admin panel and the
``trac-admin ENV notify ...`` commands.  Delivery itself stays in
:mod:`tracnotify.outbox`.
"""

from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from tracnotify import outbox

#: queue filters -> the WHERE clause that selects them
FILTERS = {
    'all': ('state IN (%s, %s)', (outbox.PENDING, outbox.DEAD)),
    'pending': ('state=%s AND attempts=0', (outbox.PENDING,)),
    'retrying': ('state=%s AND attempts>0', (outbox.PENDING,)),
    'dead': ('state=%s', (outbox.DEAD,)),
}
DAY_US = 24 * 3600 * 1000000


@dataclass
class QueuedMessage:
    """One unsent message, as the queue page and ``notify pending`` show it."""

    id: int
    ticket: int
    recipient: str
    subject: str
    state: str
    attempts: int
    last_error: Optional[str]
    next_attempt: Optional[int]
    updated: Optional[int]

    @property
    def status(self) -> str:
        """pending | retrying | dead."""
        if self.state == outbox.DEAD:
            return 'dead'
        return 'retrying' if self.attempts else 'pending'


def _where(status: str) -> Tuple[str, tuple]:
    try:
        return FILTERS[status]
    except KeyError:
        raise ValueError('unknown queue filter: %r' % status)


def count_queue(env, status: str = 'all') -> int:
    """How many unsent messages match *status*."""
    where, args = _where(status)
    for n, in env.db_query('SELECT COUNT(*) FROM tracnotify_message '
                           'WHERE ' + where, args):
        return n
    return 0


def list_queue(env, status: str = 'all', offset: int = 0,
               limit: Optional[int] = 50) -> List[QueuedMessage]:
    """Unsent messages matching *status*, oldest first, one page of them."""
    where, args = _where(status)
    sql = """SELECT id, ticket, recipient, subject, state, attempts,
                    last_error, next_attempt, updated
             FROM tracnotify_message WHERE """ + where + ' ORDER BY id'
    if limit is not None:
        sql += ' LIMIT %s OFFSET %s'
        args = args + (int(limit), int(offset))
    return [QueuedMessage(*row) for row in env.db_query(sql, args)]


def existing_ids(env, ids: Iterable[int]) -> List[int]:
    """Those of *ids* that are unsent messages (pending or dead)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return []
    found = []
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found += [row[0] for row in env.db_query(
            'SELECT id FROM tracnotify_message WHERE state IN (%s, %s) '
            'AND id IN ({})'.format(','.join(['%s'] * len(chunk))),
            [outbox.PENDING, outbox.DEAD] + chunk)]
    return sorted(found)


def retry(env, ids: Optional[Sequence[int]] = None) -> int:
    """Make the given unsent messages (every one when None) due now, with a
    fresh attempt budget; returns how many were found."""
    if ids is None:
        n = count_queue(env, 'all')
        outbox.retry_now(env)
        return n
    found = existing_ids(env, ids)
    if found:
        outbox.retry_now(env, found)
    return len(found)


def delete(env, ids: Sequence[int]) -> int:
    """Delete unsent messages; returns how many there were."""
    found = existing_ids(env, ids)
    if found:
        env.db_transaction.executemany(
            'DELETE FROM tracnotify_message WHERE id=%s AND state IN (%s, %s)',
            [(i, outbox.PENDING, outbox.DEAD) for i in found])
    return len(found)


def purge_sent(env, older_than_days: int,
               now_us: Optional[int] = None) -> Tuple[int, int]:
    """Delete sent messages older than *older_than_days*, and expanded
    events of that age that have no message left.

    Returns ``(messages, events)`` deleted.
    """
    if older_than_days < 0:
        raise ValueError('older_than_days must be >= 0')
    cutoff = (now_us or outbox.now_us()) - older_than_days * DAY_US
    with env.db_transaction as db:
        cursor = db.cursor()
        cursor.execute("""
            DELETE FROM tracnotify_message WHERE state=%s AND sent_at<%s
            """, (outbox.SENT, cutoff))
        messages = cursor.rowcount
        cursor.execute("""
            DELETE FROM tracnotify_event
            WHERE state=%s AND created<%s AND NOT EXISTS (
                SELECT 1 FROM tracnotify_message m
                WHERE m.event_id=tracnotify_event.id)
            """, (outbox.DONE, cutoff))
        events = cursor.rowcount
    return messages, events
